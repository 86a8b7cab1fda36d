"""Runtime stats: the inspector's live figures on memory, Redis and SQLite, and ``qtasks stats
inspect`` / ``qtasks top`` run as programs against the memory and Redis brokers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import anyio.to_thread
import pytest
import redis

from qtasks import QueueConfig
from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.memory_broker import MemoryBroker
from qtasks.builtin_plugins.memory_storage import MemoryStorage
from qtasks.cli import main
from qtasks.kernel.model import Envelope, WorkerInfo, new_uuid
from qtasks.kernel.portal import run_blocking
from qtasks.stats import AsyncInspectStats, AsyncStats, QueueCounts, RunningTask, SyncInspectStats, SyncStats, Throughput
from qtasks.testing import running_worker

from redis_process import SHARED_URL, free_port
from subprocesses import child_env, read_terminal, run_example, worker_process

TIMEOUT = 30.0


def redis_client() -> Any:
    """A client of the shared Redis (database 15); the test fails if Redis does not answer."""
    client = redis.Redis.from_url(SHARED_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for these tests ({error}); .ci/run starts it")
    return client


def drop_redis_keys(name: str) -> None:
    client = redis_client()
    keys = list(client.scan_iter(match=f"qtasks:{{{name}}}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis", "sqlite"])
async def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueTasks]:
    """A fresh async app on each broker: memory, the shared Redis (a unique name) or a SQLite file."""
    name = f"stats-{uuid4().hex[:8]}"
    urls = {"memory": "memory://", "redis": SHARED_URL, "sqlite": f"sqlite:///{tmp_path / 'stats.sqlite3'}"}
    if request.param == "redis":
        redis_client().close()
    app = QueueTasks(name=name, broker_url=urls[request.param])
    yield app
    await app.close()
    if request.param == "redis":
        drop_redis_keys(name)


# -- the inspector -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_inspector_counts_queue_records_throughput_and_workers(any_app: QueueTasks) -> None:
    app = any_app

    @app.task
    async def ok(value: int) -> int:
        return value

    @app.task
    async def broken() -> None:
        raise RuntimeError("boom")

    @app.task
    async def hold() -> None:
        raise AssertionError("claimed by the test, never run")

    async with running_worker(app, concurrency=2):
        assert [(await ok.add_task(i, timeout=TIMEOUT)).status for i in range(3)] == ["success"] * 3
        assert (await broken.add_task(timeout=TIMEOUT)).status == "error"
    await app.start()  # the worker closed the components as it stopped
    await app.broker.enqueue([Envelope(uuid=str(new_uuid()), priority=0, payload=b"not a message")])
    [bad] = await app.broker.claim("tester", 1, TIMEOUT)
    await app.broker.dead_letter(bad, "undecodable")
    held = await hold.add_task()
    [delivery] = await app.broker.claim("tester", 1, TIMEOUT)
    assert delivery.envelope.uuid == str(held.uuid)
    clock = time.time()
    await app.broker.heartbeat(WorkerInfo(worker_id="tester", app=app.name, host="here", pid=7, concurrency=3,
                                          started_at=clock - 5, seen_at=clock, running=(str(held.uuid),)), [delivery])
    await ok.add_task(1)
    await ok.add_task(2)
    await ok.add_task(3, priority=5)
    cancelled = await ok.add_task(4)  # on Redis a cancelled ready task leaves a tombstone: not counted
    assert await app.cancel(cancelled.uuid)
    for value in (5, 6):
        await ok.add_task(value, countdown=600)

    stats = await AsyncStats(app).inspect()
    assert isinstance(stats, AsyncInspectStats)
    assert await stats.queues() == QueueCounts(ready={0: 2, 5: 1}, delayed=2, leased=1, dead=1)
    assert (await stats.queues()).ready_total == 3
    assert await stats.statuses() == {"new": 6, "process": 0, "retry": 0, "success": 3, "error": 1, "cancel": 1}
    assert await stats.throughput() == Throughput(window=60.0, finished={"cancel": 1, "error": 1, "success": 3}, total=5, per_second=0.083)
    assert (await stats.throughput(window=30)).total == 5
    [worker] = await stats.workers()
    assert (worker.worker_id, worker.host, worker.pid, worker.concurrency) == ("tester", "here", 7, 3)
    assert worker.running == (RunningTask(uuid=str(held.uuid), task_name="hold"),)
    assert 0 <= worker.last_seen_seconds < TIMEOUT

    overview = json.loads(await stats.overview(json=True))
    assert overview["app"] == app.name and overview["broker"] == app.url
    assert overview["queues"] == {"ready": {"0": 2, "5": 1}, "delayed": 2, "leased": 1, "dead": 1}
    assert overview["statuses"]["new"] == 6 and overview["throughput"]["total"] == 5
    assert overview["workers"][0]["running"] == [{"uuid": str(held.uuid), "task_name": "hold"}]
    assert json.loads(await stats.queues(json=True))["ready"] == {"0": 2, "5": 1}


@pytest.mark.anyio
async def test_workers_show_the_task_a_real_worker_runs() -> None:
    app = QueueTasks(name="stats-worker", broker_url="memory://", config=QueueConfig(task_lease=0.3))
    started, release, beat = anyio.Event(), anyio.Event(), anyio.Event()

    @app.task
    async def crunch() -> str:
        started.set()
        await release.wait()
        return "done"

    await app.start()
    heartbeat = app.broker.heartbeat

    async def observed(worker: WorkerInfo, deliveries: Any) -> None:
        await heartbeat(worker, deliveries)
        if worker.running:
            beat.set()

    app.broker.heartbeat = observed
    stats = await AsyncStats(app).inspect()
    async with running_worker(app, concurrency=4):
        task = await crunch.add_task()
        with anyio.fail_after(TIMEOUT):
            await started.wait()
            await beat.wait()
        [worker] = await stats.workers()
        assert worker.concurrency == 4 and worker.running == (RunningTask(uuid=str(task.uuid), task_name="crunch"),)
        assert (await stats.queues()).leased == 1
        release.set()
        assert (await app.wait_result(task.uuid, TIMEOUT)).returning == "done"
    assert await stats.workers() == []  # a stopped worker leaves the registry
    await app.close()


@pytest.mark.anyio
async def test_throughput_needs_a_positive_window(app: QueueTasks) -> None:
    stats = await AsyncStats(app).inspect()
    with pytest.raises(ValueError, match=r"throughput\(window=0\): give a number of seconds > 0"):
        await stats.throughput(window=0)


def test_a_sync_app_gets_blocking_figures() -> None:
    app = SyncQueueTasks(name="sync-stats", broker_url="memory://")

    @app.task
    def double(value: int) -> int:
        return 2 * value

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        assert [double.add_task(i, timeout=TIMEOUT).returning for i in range(2)] == [0, 2]
    finally:
        app.stop()
        worker.join(TIMEOUT)
    double.add_task(5)
    double.add_task(6, countdown=600)
    stats = SyncStats(app).inspect()
    assert isinstance(stats, SyncInspectStats)
    assert stats.queues() == QueueCounts(ready={0: 1}, delayed=1, leased=0, dead=0)
    assert stats.statuses() == {"new": 2, "process": 0, "retry": 0, "success": 2, "error": 0, "cancel": 0}
    assert stats.throughput().finished == {"success": 2}
    assert stats.workers() == []
    assert json.loads(stats.overview(json=True))["queues"]["delayed"] == 1
    assert stats.task("double")["name"] == "double"  # the original static methods stay
    app.close()


class CountlessBroker(MemoryBroker):
    """A broker that cannot count its queue (it lacks ``QueueStats``)."""

    queue_counts = None


class CountlessStorage(MemoryStorage):
    """A storage that cannot count its records (it lacks ``RecordStats``)."""

    status_counts = None
    finished_within = None


@pytest.fixture
def countless(monkeypatch: pytest.MonkeyPatch) -> QueueTasks:
    """An app whose components count nothing, loadable by the CLI as ``-A countless_app:app``."""
    app = QueueTasks(name="countless", broker_url="memory://", broker=CountlessBroker(), storage=CountlessStorage())
    module = types.ModuleType("countless_app")
    module.app = app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "countless_app", module)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return app


@pytest.mark.anyio
async def test_components_that_cannot_count_show_n_a(countless: QueueTasks, capsys: pytest.CaptureFixture[str]) -> None:
    stats = await AsyncStats(countless).inspect()
    assert (await stats.queues(), await stats.statuses(), await stats.throughput()) == (None, None, None)
    overview = await stats.overview()
    assert (overview.queues, overview.statuses, overview.throughput, overview.workers) == (None, None, None, ())

    code = await anyio.to_thread.run_sync(main, ["-A", "countless_app:app", "top", "--once"])
    out = capsys.readouterr().out
    assert code == 0
    assert "queue: n/a (the broker does not count its queue" in out
    assert "tasks by status: n/a (the storage does not count its records" in out
    code = await anyio.to_thread.run_sync(main, ["-A", "countless_app:app", "stats", "inspect", "queues", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out) is None


def test_the_commands_are_gone_when_the_plugin_is_blocked(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = types.ModuleType("blocked_stats_app")
    module.app = QueueTasks(name="blocked-stats", broker_url="memory://", disable_plugins=["stats_cmd"])  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "blocked_stats_app", module)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for command in ("stats", "top"):
        assert main(["-A", "blocked_stats_app:app", command]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert f"'{command}'" in line and "'stats_cmd'" in line and "disable_plugins" in line


# -- the commands, as programs ----------------------------------------------------------------------


MEMORY_APP = """
import logging
import threading

from qtasks import QueueConfig, QueueTasks

app = QueueTasks("shop", broker_url="memory://", config=QueueConfig(logs_default_level_server=logging.CRITICAL))


@app.task(priority=2, description="adds two numbers")
def add(a: int, b: int) -> int:
    return a + b


@app.task
def broken() -> None:
    raise RuntimeError("boom")


worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
worker.start()
add.add_task(1, 2, timeout=30)
add.add_task(3, 4, timeout=30)
broken.add_task(timeout=30)
app.stop()
worker.join(30)
for value in range(3):
    add.add_task(value, value, priority=0)
add.add_task(9, 9, priority=5)
add.add_task(1, 1, countdown=600)
"""


def qtasks(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m qtasks -A jobs:app ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "qtasks", "-A", "jobs:app", *args], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=180)


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sections(text: str) -> dict[str, list[list[str]]]:
    """The plain sections of ``text``: title -> rows split into cells (header and rule left out)."""
    found = {}
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        if len(lines) >= 3 and set(lines[2].replace(" ", "")) == {"-"}:
            found[lines[0]] = [line.split() for line in lines[3:]]
    return found


@pytest.fixture
def memory_jobs(tmp_path: Path) -> Path:
    (tmp_path / "jobs.py").write_text(MEMORY_APP)
    return tmp_path


@pytest.mark.slow
def test_stats_inspect_as_a_program_on_memory(memory_jobs: Path) -> None:
    result = qtasks(memory_jobs, "stats", "inspect", "queues")
    assert result.returncode == 0, result.stderr
    assert sections(result.stdout)["queue"] == [["ready", "0", "3"], ["ready", "5", "1"], ["delayed", "-", "1"],
                                                ["leased", "-", "0"], ["dead", "-", "0"]]
    assert ok_json(qtasks(memory_jobs, "stats", "inspect", "queues", "--json")) == {"ready": {"0": 3, "5": 1}, "delayed": 1, "leased": 0, "dead": 0}
    assert ok_json(qtasks(memory_jobs, "stats", "inspect", "statuses", "json=true")) == {
        "new": 5, "process": 0, "retry": 0, "success": 2, "error": 1, "cancel": 0}
    assert ok_json(qtasks(memory_jobs, "stats", "inspect", "throughput", "window=120", "--json"))["finished"] == {"error": 1, "success": 2}

    result = qtasks(memory_jobs, "stats", "inspect", "task", "add")
    assert result.returncode == 0, result.stderr
    rows = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in result.stdout.splitlines()[3:]}
    assert (rows["priority"], rows["description"], rows["signature"]) == ("2", "adds two numbers", "(a: int, b: int) -> int")
    assert [task["name"] for task in ok_json(qtasks(memory_jobs, "stats", "inspect", "tasks", "--json"))] == ["add", "broken"]
    assert ok_json(qtasks(memory_jobs, "stats", "inspect", "app", "json=true"))["tasks"] == ["add", "broken"]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "message"), [
    (["stats", "inspect", "nosuch"], "unknown target 'nosuch'; the targets are: app, task, tasks, queues, statuses, throughput, workers, overview"),
    (["stats", "inspect", "task"], "missing a required argument: 'task_name'; call it as task(task_name)"),
    (["stats", "inspect", "task", "nosuch"], "unknown task 'nosuch'; registered: add, broken"),
    (["stats", "inspect", "queues", "limit=3"], "got an unexpected keyword argument 'limit'; call it as queues()"),
    (["top", "--interval", "0"], "argument --interval: must be more than 0 seconds, got 0"),
])
def test_bad_arguments_are_one_line_and_status_2(memory_jobs: Path, argv: list[str], message: str) -> None:
    result = qtasks(memory_jobs, *argv)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert message in line


@pytest.mark.slow
def test_top_once_as_a_program_on_memory(memory_jobs: Path) -> None:
    result = qtasks(memory_jobs, "top", "--once")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("app 'shop' on memory:// at ")
    found = sections(result.stdout)
    assert found["queue"][:2] == [["ready", "0", "3"], ["ready", "5", "1"]]
    assert found["tasks by status (records kept)"] == [["5", "0", "2", "1", "0", "0"]]
    assert found["finished in the last 60s"] == [["2", "1", "0", "3", "0.05"]]
    assert "workers: no live workers" in result.stdout

    frame = ok_json(qtasks(memory_jobs, "top", "--once", "--json"))
    assert frame["queues"] == {"ready": {"0": 3, "5": 1}, "delayed": 1, "leased": 0, "dead": 0}
    assert frame["throughput"]["finished"] == {"error": 1, "success": 2} and frame["workers"] == []


REDIS_APP = """
import os
import time

from qtasks import QueueConfig, QueueTasks

app = QueueTasks({name!r}, broker_url={url!r}, config=QueueConfig(task_lease=1.5))


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def hold() -> str:
    while not os.path.exists("release"):  # the test creates it once it has seen this task run
        time.sleep(0.02)
    return "released"
"""


@pytest.fixture
def redis_jobs(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"stats-{uuid4().hex[:8]}"
    redis_client().close()
    yield tmp_path, REDIS_APP.format(name=name, url=SHARED_URL)
    drop_redis_keys(name)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition that another process makes true; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_stats_and_top_as_programs_on_redis_with_a_live_worker(redis_jobs: tuple[Path, str]) -> None:
    cwd, source = redis_jobs
    with worker_process(cwd, source, concurrency=1):
        namespace: dict[str, Any] = {}
        exec(compile(source, "jobs", "exec"), namespace)  # the test's own view of the same app
        app = namespace["app"]
        kernel = app._kernel
        run_blocking(kernel, kernel.start)
        run_blocking(kernel, kernel.broker.enqueue, [Envelope(uuid="not-a-task-uuid", priority=0, payload=b"not a message")])
        assert [app.add_task("add", i, i, timeout=TIMEOUT).status for i in range(2)] == ["success"] * 2  # after the dead letter
        held = app.add_task("hold")
        stats = SyncStats(app).inspect()
        wait_for(lambda: [t.task_name for w in stats.workers() for t in w.running] == ["hold"], "the worker's heartbeat naming hold")
        app.add_task("add", 1, 1)
        app.add_task("add", 2, 2)
        app.add_task("add", 3, 3, priority=5)
        app.add_task("add", 4, 4, countdown=600)

        frame = ok_json(qtasks(cwd, "top", "--once", "--json"))
        assert frame["queues"] == {"ready": {"0": 2, "5": 1}, "delayed": 1, "leased": 1, "dead": 1}
        assert frame["statuses"]["new"] == 4 and frame["statuses"]["success"] == 2
        assert frame["throughput"]["finished"] == {"success": 2}
        [worker] = frame["workers"]
        assert worker["running"] == [{"uuid": str(held.uuid), "task_name": "hold"}] and worker["concurrency"] == 1

        result = qtasks(cwd, "top", "--once")
        assert result.returncode == 0, result.stderr
        found = sections(result.stdout)
        assert found["queue"] == [["ready", "0", "2"], ["ready", "5", "1"], ["delayed", "-", "1"], ["leased", "-", "1"], ["dead", "-", "1"]]
        [row] = found["workers"]
        assert row[1:4] == [worker["host"], str(worker["pid"]), "1"] and row[-2:] == ["1", "hold"]

        result = qtasks(cwd, "stats", "inspect", "workers", "--json")
        assert [w["worker_id"] for w in ok_json(result)] == [worker["worker_id"]]
        assert ok_json(qtasks(cwd, "stats", "inspect", "queues", "--json"))["dead"] == 1
        (cwd / "release").write_text("")
        assert app.wait_result(held.uuid, TIMEOUT).returning == "released"
        app.close()


UNREACHABLE_APP = """
from qtasks import QueueConfig, QueueTasks

app = QueueTasks("gone", broker_url="redis://bob:s3cret@127.0.0.1:{port}/0", config=QueueConfig(broker_timeout=0.3))
"""


@pytest.mark.slow
def test_an_unreachable_broker_is_one_line_and_status_1(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text(UNREACHABLE_APP.format(port=free_port()))
    for argv in (["stats", "inspect", "queues"], ["top", "--once"], ["top", "--once", "--json"]):
        result = qtasks(tmp_path, *argv)
        assert result.returncode == 1 and result.stdout == ""
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("qtasks: error: BrokerUnavailable: Redis at redis://bob:***@127.0.0.1:")
        assert "s3cret" not in result.stderr
    static = qtasks(tmp_path, "stats", "inspect", "app", "--json")  # needs no broker
    assert ok_json(static)["name"] == "gone"


@pytest.mark.slow
def test_top_is_a_live_rich_view_on_a_terminal_and_ctrl_c_exits_0(memory_jobs: Path) -> None:
    controller, terminal = os.openpty()
    env = {**child_env(), "COLUMNS": "160", "TERM": "xterm", "PYTHONIOENCODING": "utf-8"}
    command = [sys.executable, "-m", "qtasks", "-A", "jobs:app", "top", "--interval", "0.1"]
    process = subprocess.Popen(command, cwd=memory_jobs, env=env, stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    try:
        output = read_terminal(controller, lambda text: text.count("every 0.1s; Ctrl-C quits") >= 2)
        assert "─" in output and "finished in the last 60s" in output and "no live workers" in output, output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


@pytest.mark.slow
def test_the_example_runs_and_prints_the_figures(tmp_path: Path) -> None:
    lines = run_example("stats", tmp_path)
    assert lines[0] == "live workers: 1 | concurrency: 2"
    assert lines[1] == "queue: ready by priority {0: 1, 5: 1} | delayed 1 | leased 0 | dead 0"
    assert lines[2] == "records: new 3, success 3, error 1"
    assert lines[3] == "finished in the last 60s: {'error': 1, 'success': 3} (total 4)"
