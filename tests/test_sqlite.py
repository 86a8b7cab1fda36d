"""The SQLite default: its choice, restarts, several worker processes on one file, wake-ups and errors.

The broker's queue semantics are in ``tests/conformance`` (run on ``sqlite://`` there); these
tests cover what only the embedded default has. Processes are real subprocesses on a file in the
test's own working directory.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins import sqlite_database, sqlite_watch
from qtasks.errors import BrokerUnavailable, ConfigurationError
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.model import Envelope

from conformance.helpers import eventually, serving

pytestmark = pytest.mark.anyio

JOBS = '''
import os, time
from qtasks.asyncio import QueueTasks

app = QueueTasks(name="jobs")  # the default URL: qtasks.sqlite3 in the working directory


@app.task
def where(n: int) -> int:
    """Log which process ran ``n``, take a little time, and return the process id."""
    with open("runs.log", "a") as log:
        log.write(f"{n} {os.getpid()}\\n")
    time.sleep(0.01)
    return os.getpid()
'''


def child_env() -> dict[str, str]:
    """The environment of a child process: no QTASKS_* setting leaks in, no plugin autoload."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTASKS_")}
    env["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    """A working directory holding ``jobs.py`` (an app on the default URL); the test runs in it."""
    (tmp_path / "jobs.py").write_text(JOBS)
    return tmp_path


@pytest.fixture
def workers(jobs_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to start ``qtasks -A jobs:app run`` processes into; each is stopped (SIGTERM) after the test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_worker(jobs_dir: Path, started: list[subprocess.Popen[bytes]], concurrency: int = 4) -> subprocess.Popen[bytes]:
    """Start a worker process on ``jobs.py`` in ``jobs_dir`` (its output goes to worker-N.log)."""
    log = open(jobs_dir / f"worker-{len(started)}.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "jobs:app", "run", "-c", str(concurrency)],
                               cwd=jobs_dir, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    started.append(process)
    return process


def jobs_app() -> QueueTasks:
    """This process's view of ``jobs.py``'s app: the same name on the same default file."""
    app = QueueTasks(name="jobs")

    @app.task(name="where")
    def where(n: int) -> int:
        raise AssertionError("runs in the worker processes only")

    return app


# -- the default -----------------------------------------------------------------------------------


async def test_the_default_is_a_sqlite_file_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no URL and no QTASKS_BROKER_URL, an app (async or sync) keeps its queue in
    ``qtasks.sqlite3`` in the working directory; QTASKS_BROKER_URL still wins over the default."""
    app = QueueTasks(name="default")
    assert app.url == "sqlite:///qtasks.sqlite3"
    await app.start()
    try:
        assert type(app.broker).__name__ == "SqliteBroker" and type(app.storage).__name__ == "SqliteStorage"
        assert app.broker.database.path == str(tmp_path / "qtasks.sqlite3")
        assert (tmp_path / "qtasks.sqlite3").exists()
    finally:
        await app.close()
    assert SyncQueueTasks(name="sync-default").url == "sqlite:///qtasks.sqlite3"
    monkeypatch.setenv("QTASKS_BROKER_URL", "memory://")
    assert QueueTasks(name="env").url == "memory://"


async def test_a_queued_task_survives_restarts_of_every_process(jobs_dir: Path, workers: list[Any]) -> None:
    """A producer process queues tasks and exits; a worker started after it runs them; a third
    process (this one) reads every result from the file, pushed to it as each task ends."""
    producer = textwrap.dedent("""
        import anyio, jobs
        async def main():
            records = await jobs.app.add_tasks("where", [(n,) for n in range(10)])
            print(" ".join(str(r.uuid) for r in records))
            await jobs.app.close()
        anyio.run(main)
    """)
    done = subprocess.run([sys.executable, "-c", producer], cwd=jobs_dir, env=child_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    uuids = done.stdout.split()
    assert len(uuids) == 10
    app = jobs_app()
    try:
        assert [(await app.get(u)).status for u in uuids] == ["new"] * 10
        start_worker(jobs_dir, workers)
        records = [await app.wait_result(u, 30) for u in uuids]
    finally:
        await app.close()
    assert all(r is not None and r.status == "success" for r in records), records
    assert {r.returning for r in records} == {workers[0].pid}
    workers[0].send_signal(signal.SIGTERM)
    assert workers[0].wait(timeout=30) == 0


@pytest.mark.slow
async def test_several_worker_processes_share_one_file_and_run_each_task_once(jobs_dir: Path, workers: list[Any]) -> None:
    """Three worker processes on one file split 300 tasks between them; each task runs exactly
    once (one line in the run log, one attempt) and ends ``success``."""
    for _ in range(3):
        start_worker(jobs_dir, workers)
    app = jobs_app()
    try:
        await app.start()

        async def all_registered() -> bool:
            return len(await app.broker.workers()) == 3

        await eventually(all_registered, timeout=30)
        records = await app.add_tasks("where", [(n,) for n in range(300)])
        finals = [await app.wait_result(r.uuid, 60) for r in records]
    finally:
        await app.close()
    assert all(f is not None and f.status == "success" and f.attempts == 1 for f in finals)
    runs = Counter(line.split()[0] for line in (jobs_dir / "runs.log").read_text().splitlines())
    assert runs == Counter({str(n): 1 for n in range(300)})
    pids = {f.returning for f in finals}
    assert pids <= {w.pid for w in workers} and len(pids) >= 2


@pytest.mark.slow
async def test_the_operator_commands_see_other_processes_through_the_file(jobs_dir: Path, workers: list[Any]) -> None:
    """``qtasks workers`` and ``qtasks dlq list``, each a process of its own, show a worker
    process and a task it dead-lettered: everything they read is in the default file."""
    worker = start_worker(jobs_dir, workers)
    app = jobs_app()
    try:
        await app.start()

        async def registered() -> bool:
            return [w.pid for w in await app.broker.workers()] == [worker.pid]

        await eventually(registered, timeout=30)
        garbage = Envelope(uuid=str(uuid4()), priority=0, payload=b"\xff not a message")
        await app.broker.enqueue([garbage])

        async def dead() -> bool:
            return [letter.uuid for letter in await app.broker.dead_letters()] == [garbage.uuid]

        await eventually(dead, timeout=30)
    finally:
        await app.close()

    def qtasks(*args: str) -> Any:
        return subprocess.run([sys.executable, "-m", "qtasks", "-A", "jobs:app", *args, "--json"], cwd=jobs_dir,
                              env=child_env(), capture_output=True, text=True, timeout=60)

    listed = qtasks("workers")
    assert listed.returncode == 0, listed.stderr
    assert [row["pid"] for row in json.loads(listed.stdout)] == [worker.pid]
    letters = qtasks("dlq", "list")
    assert letters.returncode == 0, letters.stderr
    [row] = json.loads(letters.stdout)
    assert row["uuid"] == garbage.uuid and "undecodable" in row["reason"]


# -- several apps, wake-ups ------------------------------------------------------------------------


async def test_apps_on_one_file_keep_their_own_queues(tmp_path: Path) -> None:
    """Two apps on one file: a worker of one never takes the other's tasks."""
    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    first, second = QueueTasks(name="first", broker_url=url), QueueTasks(name="second", broker_url=url)

    for app in (first, second):
        @app.task(name="who")
        async def who() -> str:
            return "ran"

    try:
        other = await second.add_task("who")
        async with serving(first):
            mine = await first.add_task("who", timeout=10)
        assert mine is not None and mine.status == "success"
        assert (await second.get(other.uuid)).status == "new" and await second.broker.depth() == 1
        assert await first.get(other.uuid) is None
    finally:
        await first.close()
        await second.close()


def two_connections(url: str, name: str) -> tuple[QueueTasks, QueueTasks]:
    """Two apps of one name on one file, each with its own connections (as two processes would
    have: one's commits reach the other only through the file); both know ``echo(n)``."""
    apps = QueueTasks(name=name, broker_url=url), QueueTasks(name=name, broker_url=url)
    for app in apps:
        @app.task(name="echo")
        async def echo(n: Any = None) -> Any:
            return n

    return apps


@pytest.fixture(params=["inotify", "poll"])
def wake_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the apps of the test see other connections' commits: inotify (Linux), or the polling
    thread used where inotify is missing or refused."""
    if request.param == "poll":
        monkeypatch.setattr(sqlite_watch, "inotify_fd", lambda path: None)
    elif not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    return request.param


async def test_an_idle_worker_waits_without_querying_and_wakes_on_another_connections_commit(tmp_path: Path, wake_mode: str) -> None:
    """An idle worker makes no more than a few queries a second, yet a task queued through
    another connection to the file (as another process would) runs well before the worker's
    own claim wait (5 s) would have ended."""
    worker_app, producer = two_connections(f"sqlite:///{tmp_path}/idle.sqlite3", "idle")

    try:
        await worker_app.start()
        database = worker_app.broker.database
        assert database.watcher.mode == wake_mode
        queries: list[str] = []
        for name in ("write", "read"):
            original = getattr(database, name)

            async def counted(operation: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                queries.append(_name)
                return await _original(operation, *args, **kwargs)

            setattr(database, name, counted)
        async with serving(worker_app):
            await anyio.sleep(1.0)  # elapsed idle time is what is measured
            idle_queries = len(queries)
            with anyio.fail_after(2.0):
                record = await producer.add_task("echo", "pong", timeout=2.0)
        assert idle_queries <= 4, queries
        assert record is not None and (record.status, record.returning) == ("success", "pong")
    finally:
        await worker_app.close()
        await producer.close()


@pytest.mark.slow
async def test_no_wake_up_is_lost_between_connections(tmp_path: Path, wake_mode: str) -> None:
    """500 round trips between two connections (a producer app and a worker app, as two processes
    would be): each ends within a fraction of a second. A lost wake-up shows as one that waits
    for a timeout instead: the worker's claim wait (5 s) or the result poller's re-read (1 s)."""
    # with synchronous=full a commit fsyncs the log before it shows: a wider gap between the two
    worker_app, producer = two_connections(f"sqlite:///{tmp_path}/trips.sqlite3?synchronous=full", "trips")

    try:
        async with serving(worker_app, concurrency=4):
            for n in range(500):
                began = time.monotonic()
                record = await producer.add_task("echo", n, timeout=2)
                took = time.monotonic() - began
                assert took < 0.9, f"round trip {n} took {took:.2f}s: a wake-up was lost"
                assert record is not None and record.returning == n
    finally:
        await worker_app.close()
        await producer.close()


async def test_a_running_task_shows_process_to_other_connections_and_ends_final(tmp_path: Path) -> None:
    """A task that runs for a while is seen ``process`` through another connection (its record is
    written a moment after the claim); once it ends, its record is final and stays final."""
    url = f"sqlite:///{tmp_path}/running.sqlite3"
    worker_app, observer = QueueTasks(name="running", broker_url=url), QueueTasks(name="running", broker_url=url)
    release = anyio.Event()

    @worker_app.task(name="slow")
    async def slow() -> str:
        await release.wait()
        return "done"

    try:
        async with serving(worker_app):
            task = await observer.add_task("slow")

            async def running() -> bool:
                record = await observer.get(task.uuid)
                return record is not None and record.status == "process"

            await eventually(running)
            release.set()
            final = await observer.wait_result(task.uuid, 10)
        assert final is not None and (final.status, final.returning) == ("success", "done")
        assert (await observer.get(task.uuid)).status == "success"
    finally:
        await worker_app.close()
        await observer.close()


async def test_writes_queued_together_share_a_transaction_and_fail_alone(tmp_path: Path) -> None:
    """Writes made while a transaction runs commit together in the next one; a write that raises
    is rolled back alone and its error reaches its caller only; a writer cancelled while waiting
    does not wait, but its write still commits."""
    app = QueueTasks(name="batch", broker_url=f"sqlite:///{tmp_path}/batch.sqlite3")
    await app.start()
    database = app.broker.database
    try:
        await database.write(lambda c: c.execute("CREATE TABLE notes (text TEXT)"))
        transactions: list[int] = []
        original = database.writes._send

        def counting(operation: Any, done: Any) -> None:  # one call per transaction
            transactions.append(1)
            original(operation, done)

        database.writes._send = counting  # type: ignore[method-assign]

        def note(text: str) -> Any:
            return lambda c: c.execute("INSERT INTO notes VALUES (?)", (text,)).rowcount

        def broken(c: Any) -> None:
            c.execute("INSERT INTO notes VALUES ('rolled back')")
            raise ValueError("this write fails")

        results: dict[str, Any] = {}

        async def write(name: str, operation: Any) -> None:
            try:
                results[name] = await database.write(operation)
            except ValueError as error:
                results[name] = error

        async with anyio.create_task_group() as group:
            for name, operation in [("first", note("first")), ("second", note("second")), ("broken", broken), ("third", note("third"))]:
                group.start_soon(write, name, operation)
        assert results["first"] == results["second"] == results["third"] == 1
        assert isinstance(results["broken"], ValueError)
        assert len(transactions) <= 2  # the first write alone, then the three that queued behind it
        with pytest.raises(ValueError, match="this write fails"):  # alone in its transaction
            await database.write(broken)
        with anyio.move_on_after(0):  # cancelled before the write even starts
            await database.write(note("cancelled"))
        await database.writes.drain()
        rows = await database.read(lambda c: [r[0] for r in c.execute("SELECT text FROM notes ORDER BY rowid")])
        assert sorted(rows) == ["cancelled", "first", "second", "third"]
    finally:
        await app.close()


async def test_the_wal_is_checkpointed_on_its_own_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits never checkpoint the WAL themselves; the checkpoint thread copies it into the file
    once it is big enough, so the file grows while the app still runs."""
    monkeypatch.setattr(sqlite_database, "CHECKPOINT_EVERY", 1)
    monkeypatch.setattr(sqlite_database, "CHECKPOINT_BYTES", 64 * 1024)
    path = tmp_path / "wal.sqlite3"
    app = QueueTasks(name="wal", broker_url=f"sqlite:///{path}")
    await app.start()
    try:
        before = path.stat().st_size
        assert await app.broker.database.write(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
        for _ in range(10):
            await app.add_tasks("anything", [("x" * 1000,)] * 20)

        async def grown() -> bool:
            return path.stat().st_size > before

        await eventually(grown)
    finally:
        await app.close()


# -- settings and errors ---------------------------------------------------------------------------


async def test_synchronous_full_is_applied(tmp_path: Path) -> None:
    """``?synchronous=full`` makes every commit wait for the disk (PRAGMA synchronous = 2)."""
    app = QueueTasks(name="durable", broker_url=f"sqlite:///{tmp_path}/full.sqlite3?synchronous=full")
    try:
        await app.start()
        assert await app.broker.database.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
        assert await app.broker.database.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    finally:
        await app.close()


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite://localhost/q.sqlite3", "names a host ('localhost'), but a SQLite database is a local file"),
    ("sqlite:///:memory:", "use memory:// for a one-process queue"),
    ("sqlite:///q.sqlite3?timeout=3", "unknown option(s) timeout; the only one is synchronous=normal|full"),
    ("sqlite:///q.sqlite3?synchronous=off", "synchronous='off'; use synchronous=normal (the default) or synchronous=full"),
])
def test_a_malformed_url_names_the_fix(url: str, message: str) -> None:
    app = QueueTasks(name="bad", broker_url=url)
    with pytest.raises(ConfigurationError) as caught:
        _ = app.broker
    assert message in str(caught.value)


async def test_a_path_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    app = QueueTasks(name="nowhere", broker_url=f"sqlite:///{tmp_path}/missing/q.sqlite3")
    with pytest.raises(ConfigurationError, match=f"the folder {tmp_path}/missing does not exist; create it or choose another path"):
        await app.start()
    assert not (tmp_path / "missing").exists()


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.sqlite3").write_text("shopping list\n" * 100)
    app = QueueTasks(name="notes", broker_url=f"sqlite:///{tmp_path}/notes.sqlite3")
    with pytest.raises(ConfigurationError, match="is not a usable SQLite database"):
        await app.start()


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Any]:
    """``read_only(path)`` makes a file or folder unwritable, even for root (``chattr +i``); undone after."""
    made: list[Path] = []

    def protect(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555 if path.is_dir() else 0o444)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: cannot make a file read-only")
        made.append(path)

    yield protect
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


async def test_a_read_only_database_or_folder_names_the_fix(tmp_path: Path, read_only: Any) -> None:
    """A read-only file fails its first write, and a file that cannot be created in a read-only
    folder fails at start; both errors name the path and what to change."""
    url = f"sqlite:///{tmp_path}/ro.sqlite3"
    made = QueueTasks(name="ro", broker_url=url)
    await made.start()
    await made.close()
    read_only(tmp_path / "ro.sqlite3")
    app = QueueTasks(name="ro", broker_url=url)
    with pytest.raises(ConfigurationError, match=r"ro.sqlite3 is read-only for this process .*make the file and its folder writable"):
        await app.start()
        await app.add_task("anything")
    await app.close()
    folder = tmp_path / "locked-folder"
    folder.mkdir()
    read_only(folder)
    elsewhere = QueueTasks(name="ro", broker_url=f"sqlite:///{folder}/q.sqlite3")
    with pytest.raises(ConfigurationError, match="cannot open SQLite database .*check that its folder exists and is writable"):
        await elsewhere.start()


async def test_a_database_locked_by_another_process_raises_broker_unavailable(tmp_path: Path) -> None:
    """While another connection holds the write lock, a write waits ``broker_timeout`` seconds,
    then raises ``BrokerUnavailable`` naming the file; once the lock is gone it works again."""
    path = tmp_path / "locked.sqlite3"
    app = QueueTasks(name="locked", broker_url=f"sqlite:///{path}", config=QueueConfig(broker_timeout=0.3))
    await app.start()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=f"SQLite database {path} stayed locked by another connection for 0.3s"):
            await app.add_task("anything")
        assert 0.25 <= time.monotonic() - began < 5
        holder.execute("ROLLBACK")
        assert (await app.add_task("anything")).status == "new"
    finally:
        holder.close()
        await app.close()
