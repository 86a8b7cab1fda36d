"""The operator commands (``task get|cancel``, ``queue purge``, ``dlq``, ``workers``, ``run --processes``)
run as real ``python -m qtasks`` processes against memory://, the default SQLite file and Redis."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import anyio.to_thread
import pytest
import redis

from qtasks.asyncio import QueueTasks
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.model import Envelope, new_uuid
from qtasks.testing import running_worker

from redis_process import SHARED_URL, free_port
from test_cli import TIMEOUT, child_env, on_terminal, one_error_line, qtasks, wait_for, write_module

pytestmark = pytest.mark.slow

SYNC = "from qtasks import QueueTasks"
ASYNC = "from qtasks.asyncio import QueueTasks"
APPS = pytest.mark.parametrize("import_line", [SYNC, ASYNC], ids=["sync-app", "async-app"])
UNKNOWN = "0f2c614b-327d-4a90-8a86-edce0761aafd"


def app_module(directory: Path, import_line: str, name: str, url: str | None, extra: str = "") -> None:
    """Write ``jobs.py``: an app called ``name`` on ``url`` (None: the default SQLite file)."""
    broker = "" if url is None else f", broker_url={url!r}"
    write_module(directory, "jobs", f"{import_line}\nfrom qtasks import QueueConfig\n"
                 f"app = QueueTasks({name!r}{broker}, config=QueueConfig(task_lease=2.0))\n{extra}")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m qtasks -A jobs:app ARGS`` in ``cwd``, stdin not a terminal."""
    return qtasks(cwd, "-A", "jobs:app", *args)


def cli_json(cwd: Path, *args: str) -> Any:
    """Run a command with ``--json``; check it succeeded and return the parsed output."""
    result = cli(cwd, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def redis_name() -> Iterator[str]:
    """A unique app name on the shared Redis (database 15); its keys are deleted after the test."""
    client = redis.Redis.from_url(SHARED_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for these tests ({error}); .ci/run starts it")
    name = f"cli-{uuid4().hex[:8]}"
    yield name
    keys = list(client.scan_iter(match=f"qtasks:{{{name}}}:*"))
    if keys:
        client.delete(*keys)
    client.close()


# -- memory://: another process sees an empty broker -----------------------------------------------


@APPS
def test_memory_commands_in_their_own_process_see_nothing(tmp_path: Path, import_line: str) -> None:
    app_module(tmp_path, import_line, "mem", "memory://")
    for command in (["task", "get", UNKNOWN], ["task", "cancel", UNKNOWN]):
        result = cli(tmp_path, *command)
        assert result.returncode == 1 and result.stdout == ""
        line = one_error_line(result)
        assert line.startswith(f"qtasks task {command[1]}: error:") and f"no task {UNKNOWN} in app 'mem' on memory://" in line
        assert "memory:// lives inside one process" in line
    assert json.loads(cli(tmp_path, "task", "cancel", UNKNOWN, "--json").stdout) == {"uuid": UNKNOWN, "cancelled": False, "status": None}
    for command in (["task", "get", "not-a-uuid"], ["task", "cancel", "not-a-uuid"]):
        result = cli(tmp_path, *command)
        assert result.returncode == 2 and "'not-a-uuid' is not a task uuid" in one_error_line(result)
    assert cli(tmp_path, "queue", "purge", "--yes").stdout == "dropped 0 queued task(s)\n"
    assert cli_json(tmp_path, "queue", "purge", "--yes") == {"dropped": 0}
    assert cli(tmp_path, "workers").stdout == "no live workers\n"
    assert cli_json(tmp_path, "workers") == []
    assert cli_json(tmp_path, "dlq", "list") == []
    assert cli_json(tmp_path, "dlq", "requeue", "--all") == {"requeued": [], "unknown": []}
    assert cli_json(tmp_path, "dlq", "purge", "--yes") == {"dropped": 0}


@pytest.mark.parametrize("command", [["queue", "purge"], ["dlq", "purge"]])
def test_purge_without_yes_off_a_terminal_is_refused(tmp_path: Path, command: list[str]) -> None:
    app_module(tmp_path, ASYNC, "mem", "memory://")
    result = cli(tmp_path, *command)
    assert result.returncode == 1 and result.stdout == ""
    line = one_error_line(result)
    assert line.startswith(f"qtasks {' '.join(command)}: error: this drops") and "pass --yes to confirm" in line


def test_run_processes_refuses_memory(tmp_path: Path) -> None:
    app_module(tmp_path, SYNC, "mem", "memory://")
    result = cli(tmp_path, "run", "--processes", "2")
    assert result.returncode == 2
    assert "run --processes needs a broker that processes share: memory:// lives inside one process" in one_error_line(result)


@pytest.mark.parametrize(("blocked", "command"), [("task_cmd", ["task", "get", UNKNOWN]), ("task_cmd", ["queue", "purge", "--yes"]),
                                                  ("operator_cmd", ["workers", "--json"])])
def test_a_blocked_command_plugin_is_named(tmp_path: Path, blocked: str, command: list[str]) -> None:
    write_module(tmp_path, "jobs", f"{ASYNC}\napp = QueueTasks('bare', broker_url='memory://', disable_plugins=[{blocked!r}])\n")
    result = cli(tmp_path, *command)
    assert result.returncode == 2 and result.stdout == ""
    assert f"the command {command[0]!r} comes from the builtin plugin {blocked!r}, which app 'bare' disables" in one_error_line(result)
    listed = re.findall(r"^    (\w+) ", cli(tmp_path, "--help").stdout, re.M)
    assert "run" in listed and command[0] not in listed


# -- Redis: enqueued from the test process, inspected through the CLI ------------------------------

TASKS = """
@app.task
def add(a, b=0):
    return a + b


@app.task(retry=1)
def boom(reason):
    raise ValueError(reason)
"""


def redis_app(name: str) -> Any:
    """The test process's view of the app ``jobs.py`` defines: the same name and tasks."""
    app = QueueTasks(name, broker_url=SHARED_URL, config=QueueConfig(task_lease=2.0))

    @app.task
    def add(a: int, b: int = 0) -> int:
        return a + b

    @app.task(retry=1)
    def boom(reason: str) -> None:
        raise ValueError(reason)

    return app


@pytest.mark.anyio
@APPS
async def test_task_get_shows_result_arguments_and_every_traceback(tmp_path: Path, redis_name: str, import_line: str) -> None:
    app_module(tmp_path, import_line, redis_name, SHARED_URL, TASKS)
    app = redis_app(redis_name)
    try:
        async with running_worker(app, concurrency=2):
            done = await app.add_task("add", 2, b=3, priority=4, timeout=TIMEOUT)
            failed = await app.add_task("boom", "bad input", timeout=TIMEOUT)
    finally:
        await app.close()
    assert done is not None and failed is not None and failed.status == "error"

    record = await anyio.to_thread.run_sync(cli_json, tmp_path, "task", "get", str(done.uuid))
    assert {key: record[key] for key in ("uuid", "task_name", "status", "priority", "args", "kwargs", "returning", "attempts")} == {
        "uuid": str(done.uuid), "task_name": "add", "status": "success", "priority": 4, "args": [2], "kwargs": {"b": 3},
        "returning": 5, "attempts": 1}
    assert record["errors"] == [] and record["traceback"] is None and record["cancel_reason"] is None
    assert record["created_at"] <= record["updated_at"] and record["created_at"].endswith("+00:00")

    plain = await anyio.to_thread.run_sync(cli, tmp_path, "task", "get", str(done.uuid))
    assert plain.returncode == 0, plain.stderr
    fields = dict(line.split(":", 1) for line in plain.stdout.splitlines())
    assert {key: value.strip() for key, value in fields.items() if key in ("status", "args", "kwargs", "returning")} == {
        "status": "success", "args": "[2]", "kwargs": '{"b": 3}', "returning": "5"}

    record = await anyio.to_thread.run_sync(cli_json, tmp_path, "task", "get", str(failed.uuid))
    assert (record["status"], record["attempts"], len(record["errors"])) == ("error", 2, 2)
    assert all("ValueError: bad input" in text for text in record["errors"]) and record["traceback"] == record["errors"][-1]
    plain = await anyio.to_thread.run_sync(cli, tmp_path, "task", "get", str(failed.uuid))
    lines = plain.stdout.splitlines()
    assert "error 1 of 2:" in lines and "error 2 of 2:" in lines
    assert "  ValueError: bad input" in lines and "  Traceback (most recent call last):" in lines

    drawn = await anyio.to_thread.run_sync(on_terminal, tmp_path, "-A", "jobs:app", "task", "get", str(failed.uuid))
    assert "boom" in drawn and "error 2 of 2:" in drawn and "ValueError: bad input" in drawn

    missing = await anyio.to_thread.run_sync(cli, tmp_path, "task", "get", UNKNOWN)
    assert missing.returncode == 1 and f"no task {UNKNOWN} in app {redis_name!r} on {SHARED_URL}" in one_error_line(missing)


@pytest.mark.anyio
@APPS
async def test_task_cancel_and_queue_purge(tmp_path: Path, redis_name: str, import_line: str) -> None:
    app_module(tmp_path, import_line, redis_name, SHARED_URL, TASKS)
    app = redis_app(redis_name)
    try:
        first, second, third = [await app.add_task("add", n) for n in range(3)]
        result = await anyio.to_thread.run_sync(cli, tmp_path, "task", "cancel", str(first.uuid), "--reason", "not needed")
        assert (result.returncode, result.stdout) == (0, f"cancelled {first.uuid}: it will not run\n"), result.stderr
        record = await app.get(first.uuid)
        assert (record.status, record.cancel_reason) == ("cancel", "not needed")
        again = await anyio.to_thread.run_sync(cli, tmp_path, "task", "cancel", str(first.uuid))
        assert again.returncode == 1 and "it already ended with status 'cancel'" in one_error_line(again)
        as_json = await anyio.to_thread.run_sync(cli_json, tmp_path, "task", "cancel", str(second.uuid))
        assert as_json == {"uuid": str(second.uuid), "cancelled": True, "status": "cancel"}

        await app.add_task("add", 10, countdown=3600)  # delayed tasks are queued too
        refused = await anyio.to_thread.run_sync(cli, tmp_path, "queue", "purge")
        assert refused.returncode == 1 and "this drops the 2 queued task(s)" in one_error_line(refused)
        assert await app.broker.depth() == 2
        purged = await anyio.to_thread.run_sync(cli, tmp_path, "queue", "purge", "--yes")
        assert (purged.returncode, purged.stdout) == (0, "dropped 2 queued task(s)\n"), purged.stderr
        assert await app.broker.depth() == 0
        assert (await app.get(third.uuid)).status == "new"  # the record stays
    finally:
        await app.close()


def answer_on_a_terminal(cwd: Path, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``qtasks -A jobs:app ARGS`` with stdin on a pseudo-terminal where ``answer`` is typed."""
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "jobs:app", *args], cwd=cwd, env=child_env(),
                                   stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(controller, answer.encode() + b"\n")
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.anyio
async def test_queue_purge_asks_on_a_terminal(tmp_path: Path, redis_name: str) -> None:
    app_module(tmp_path, SYNC, redis_name, SHARED_URL, TASKS)
    app = redis_app(redis_name)
    try:
        await app.add_task("add", 1)
        declined = await anyio.to_thread.run_sync(answer_on_a_terminal, tmp_path, "no", "queue", "purge")
        assert declined.returncode == 1 and declined.stdout == ""
        assert "this drops the 1 queued task(s)" in declined.stderr and "Type yes to confirm" in declined.stderr
        assert "not confirmed (answered 'no', not 'yes'): nothing was dropped" in declined.stderr
        assert await app.broker.depth() == 1
        confirmed = await anyio.to_thread.run_sync(answer_on_a_terminal, tmp_path, "yes", "queue", "purge")
        assert (confirmed.returncode, confirmed.stdout) == (0, "dropped 1 queued task(s)\n"), confirmed.stderr
        assert await app.broker.depth() == 0
    finally:
        await app.close()


@pytest.mark.anyio
async def test_dlq_and_workers_on_redis(tmp_path: Path, redis_name: str) -> None:
    app_module(tmp_path, ASYNC, redis_name, SHARED_URL, TASKS)
    app = redis_app(redis_name)
    dead = str(new_uuid())
    try:
        await app.start()
        await app.broker.enqueue([Envelope(uuid=dead, priority=0, payload=b"\xffnot a QTasks message")])
        async with running_worker(app, concurrency=1) as worker:
            assert (await app.add_task("add", 1, timeout=TIMEOUT)).status == "success"  # one consumer: the bad one went first
            await app.broker.heartbeat(worker.info(), [])
            [row] = await anyio.to_thread.run_sync(cli_json, tmp_path, "workers")
            assert (row["worker_id"], row["pid"], row["app"], row["concurrency"]) == (worker.worker_id, os.getpid(), redis_name, 1)
            drawn = await anyio.to_thread.run_sync(on_terminal, tmp_path, "-A", "jobs:app", "workers")
            assert "─" in drawn and worker.worker_id in drawn and "seen_ago" in drawn
        [letter] = await anyio.to_thread.run_sync(cli_json, tmp_path, "dlq", "list")
        assert (letter["uuid"], letter["task_name"]) == (dead, "<undecodable>")
        requeued = await anyio.to_thread.run_sync(cli, tmp_path, "dlq", "requeue", dead, UNKNOWN, "--json")
        assert requeued.returncode == 1 and f"not in the dead-letter queue: {UNKNOWN}" in one_error_line(requeued)
        assert json.loads(requeued.stdout) == {"requeued": [dead], "unknown": [UNKNOWN]}
        await app.start()  # the worker closed the components when it stopped
        assert await app.broker.depth() == 1
    finally:
        await app.close()
    assert await anyio.to_thread.run_sync(cli_json, tmp_path, "workers") == []


def test_an_unreachable_broker_is_one_line_for_every_command(tmp_path: Path) -> None:
    url = f"redis://bob:s3cret@127.0.0.1:{free_port()}/0"
    write_module(tmp_path, "jobs", f"{SYNC}\nfrom qtasks import QueueConfig\n"
                 f"app = QueueTasks('away', broker_url={url!r}, config=QueueConfig(broker_timeout=0.3))\n")
    for command in (["task", "get", UNKNOWN], ["task", "cancel", UNKNOWN], ["queue", "purge", "--yes"], ["workers"],
                    ["dlq", "list"], ["run"], ["run", "--processes", "2"]):
        result = cli(tmp_path, *command)
        assert result.returncode == 1, (command, result.stderr)
        line = one_error_line(result)
        assert line.startswith("qtasks: error: BrokerUnavailable: Redis at redis://bob:***@127.0.0.1:"), command
        assert "s3cret" not in result.stderr + result.stdout


# -- run --processes -------------------------------------------------------------------------------

HOLD = """
import pathlib
import time

HERE = pathlib.Path(__file__).parent


@app.task
def hold():
    (HERE / "hold.started").write_text("")
    deadline = time.monotonic() + 120
    while not (HERE / "release").exists():
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.01)
    return "released"
"""


def parent_of(pid: int) -> int | None:
    """The parent pid of a live process (None once it is gone), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def child_workers(cwd: Path, supervisor: int) -> set[int]:
    """The pids ``qtasks workers --json`` lists that are live children of ``supervisor``."""
    return {row["pid"] for row in cli_json(cwd, "workers") if parent_of(row["pid"]) == supervisor}


@pytest.mark.anyio
@pytest.mark.parametrize(("import_line", "url", "stop"), [(SYNC, None, signal.SIGTERM), (ASYNC, SHARED_URL, signal.SIGINT)],
                         ids=["sqlite-sync-app-sigterm", "redis-async-app-sigint"])
async def test_run_processes_restarts_a_killed_worker_and_drains_on_a_signal(
    tmp_path: Path, redis_name: str, import_line: str, url: str | None, stop: signal.Signals,
) -> None:
    app_module(tmp_path, import_line, redis_name, url, TASKS + HOLD)
    producer = QueueTasks(redis_name, broker_url=url)  # the default SQLite file: the test's cwd is tmp_path
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "w") as log:
        supervisor = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "jobs:app", "run", "--processes", "2", "-c", "2"],
                                      cwd=tmp_path, env=child_env(), stdout=log, stderr=subprocess.STDOUT)

    def until(condition: Any, what: str) -> Any:
        return anyio.to_thread.run_sync(wait_for, condition, what, supervisor)

    try:
        await until(lambda: len(child_workers(tmp_path, supervisor.pid)) == 2, "two worker processes")
        first = await anyio.to_thread.run_sync(child_workers, tmp_path, supervisor.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        await until(lambda: len(child_workers(tmp_path, supervisor.pid) - first) == 1, "a replacement worker process")
        now = await anyio.to_thread.run_sync(child_workers, tmp_path, supervisor.pid)
        assert victim not in now and len(now) == 2
        assert f"(pid {victim}) ended unexpectedly (killed by SIGKILL); restarting it" in log_path.read_text()

        done = await producer.add_task("add", 20, timeout=TIMEOUT)
        assert done is not None and (done.status, done.returning) == ("success", 20)
        held = await producer.add_task("hold")
        await until(lambda: (tmp_path / "hold.started").exists(), "the held task started")
        supervisor.send_signal(stop)
        await until(lambda: f"received {stop.name}: stopping the worker processes" in log_path.read_text(), "the signal passed on")
        assert supervisor.poll() is None, "the supervisor exited with a task still running"
        (tmp_path / "release").write_text("")
        assert await anyio.to_thread.run_sync(lambda: supervisor.wait(timeout=TIMEOUT)) == 0, log_path.read_text()
        assert all(parent_of(pid) is None for pid in now), "a worker process outlived the supervisor"
        final = await producer.wait_result(held.uuid, TIMEOUT)
        assert final is not None and (final.status, final.returning) == ("success", "released")
        assert "all 2 worker processes ended" in log_path.read_text()
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        await producer.close()


CRASH_ON_START = f"""
import os
from qtasks import hookimpl
{ASYNC}


class CrashOnStart:
    @hookimpl
    async def qtasks_startup(self, app, component):
        if component == "worker":
            os._exit(3)


app = QueueTasks("crash", plugins=[CrashOnStart()])
"""


def test_run_processes_gives_up_on_workers_that_fail_at_startup(tmp_path: Path) -> None:
    write_module(tmp_path, "jobs", CRASH_ON_START)
    result = cli(tmp_path, "run", "--processes", "2", "--min-uptime", "60")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("qtasks: error: gave up: worker process ") and lines[-1].endswith(
        "failed within 60s of starting 5 times in a row (last: status 3); run `qtasks -A jobs:app run` to see why")
    assert sum("ended unexpectedly (status 3); restarting it" in line for line in lines) >= 4
