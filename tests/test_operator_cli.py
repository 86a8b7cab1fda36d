"""The operator commands ``qtasks dlq list|requeue|purge`` and ``qtasks workers`` on a real memory broker.

A memory broker lives in one process, so most tests run ``qtasks.cli.main`` in-process, from a
worker thread of the test's event loop: the command then runs on the loop that runs the app and
its worker, as ``run_blocking`` does for any sync caller there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.operator_cmd import DLQ_COLUMNS, WORKER_COLUMNS
from qtasks.cli import main
from qtasks.kernel.model import Envelope, new_uuid
from qtasks.testing import running_worker

BAD_PAYLOAD = b"\xffnot a QTasks message"
TIMEOUT = 30.0
MODULE = "operator_cli_app"
SPEC = f"{MODULE}:app"


@pytest.fixture
def ops(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh async memory app with an ``ok`` task, loadable by the CLI as ``-A operator_cli_app:app``."""
    app = QueueTasks(name="ops", broker_url="memory://")

    @app.task
    async def ok(value: int) -> int:
        return value

    module = types.ModuleType(MODULE)
    module.app = app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_app puts the cwd first on sys.path
    return app


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``qtasks -A operator_cli_app:app ARGV`` in-process; return the status, stdout and stderr."""
    capsys.readouterr()  # drop whatever the worker logged before
    code = await anyio.to_thread.run_sync(main, ["-A", SPEC, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def serve_until_idle(app: Any) -> None:
    """Serve with one consumer until an ``ok`` task queued now has run: everything queued before it is done."""
    async with running_worker(app, concurrency=1):
        done = await app.add_task("ok", 1, timeout=TIMEOUT)
    assert done is not None and done.status == "success", done


async def dead_letter(app: Any, count: int = 1) -> list[str]:
    """Queue ``count`` undecodable envelopes and serve until the worker has dead-lettered them."""
    uuids = [str(new_uuid()) for _ in range(count)]
    await app.start()
    for uuid in uuids:
        await app.broker.enqueue([Envelope(uuid=uuid, priority=0, payload=BAD_PAYLOAD)])
    await serve_until_idle(app)
    return uuids


def table(out: str, columns: tuple[str, ...]) -> list[list[str]]:
    """The rows of a plain table, split into its columns (the last one may contain spaces)."""
    lines = out.splitlines()
    assert lines[0].split() == list(columns), out
    assert set(lines[1].replace(" ", "")) == {"-"}, out
    return [line.split(maxsplit=len(columns) - 1) for line in lines[2:]]


# -- dlq list --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_dlq_list_shows_dead_letters_oldest_first(ops: Any, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = await dead_letter(ops, 2)
    [stored] = await ops.broker.dead_letters(1)
    assert stored.reason.startswith("dead-lettered: undecodable payload")

    code, out, err = await cli(capsys, "dlq", "list")
    assert code == 0, err
    rows = table(out, DLQ_COLUMNS)
    assert [row[0] for row in rows] == [first, second]
    uuid, task_name, dead_at, deliveries, reason = rows[0]
    assert (uuid, task_name, deliveries, reason) == (first, "<undecodable>", "1", stored.reason)
    assert datetime.fromisoformat(dead_at).timestamp() == pytest.approx(stored.dead_at, abs=1)

    code, out, err = await cli(capsys, "dlq", "list", "--limit", "1")
    assert code == 0 and [row[0] for row in table(out, DLQ_COLUMNS)] == [first]
    assert "--limit" in err  # there may be more than were shown

    code, out, err = await cli(capsys, "dlq", "list", "--json")
    assert code == 0, err
    letters = json.loads(out)
    assert [letter["uuid"] for letter in letters] == [first, second]
    assert letters[0] == {"uuid": first, "task_name": "<undecodable>", "dead_at": dead_at, "deliveries": 1,
                          "priority": 0, "reason": stored.reason}


@pytest.mark.anyio
async def test_dlq_list_decodes_the_task_name_and_keeps_the_first_line_of_the_reason(ops: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ops.config.max_deliveries = 0  # every claim is dead-lettered, payload intact
    async with running_worker(ops, concurrency=1):
        record = await ops.add_task("ok", 7, timeout=TIMEOUT)
    assert record is not None and record.status == "error" and "dead-lettered" in record.traceback
    await ops.start()
    await ops.broker.enqueue([Envelope(uuid="no-task-uuid", priority=3, payload=BAD_PAYLOAD)])
    [delivery] = await ops.broker.claim("operator", 1, TIMEOUT)
    await ops.broker.dead_letter(delivery, "first line\nsecond line")

    code, out, err = await cli(capsys, "dlq", "list")
    assert code == 0, err
    rows = {row[0]: row for row in table(out, DLQ_COLUMNS)}
    assert rows[str(record.uuid)][1] == "ok"
    assert rows["no-task-uuid"][1:2] + rows["no-task-uuid"][3:] == ["<undecodable>", "1", "first line"]
    assert "second line" not in out

    code, out, _ = await cli(capsys, "dlq", "list", "--json")
    by_uuid = {letter["uuid"]: letter for letter in json.loads(out)}
    assert by_uuid["no-task-uuid"]["reason"] == "first line\nsecond line" and by_uuid["no-task-uuid"]["priority"] == 3


# -- dlq requeue and purge -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_dlq_requeue_all_then_purge(ops: Any, capsys: pytest.CaptureFixture[str]) -> None:
    [uuid] = await dead_letter(ops)
    assert (await ops.get(uuid)).status == "error"

    code, out, err = await cli(capsys, "dlq", "requeue", "--all")
    assert code == 0, err
    assert out.splitlines() == ["requeued 1 dead letter(s):", f"  {uuid}"]
    assert await ops.broker.dead_letters() == [] and await ops.broker.depth() == 1
    assert (await ops.get(uuid)).status == "new"  # queued again, as app.get shows it

    await serve_until_idle(ops)  # claimed again: still undecodable, so dead-lettered again
    [again] = await ops.broker.dead_letters()
    assert again.uuid == uuid and again.delivery_count == 1  # fresh counts

    code, out, err = await cli(capsys, "dlq", "purge")
    assert code == 1 and out == ""
    assert "--yes" in err and len(err.strip().splitlines()) == 1
    assert len(await ops.broker.dead_letters()) == 1  # refused: nothing dropped

    code, out, err = await cli(capsys, "dlq", "purge", "--yes")
    assert code == 0, err
    assert out.strip() == "dropped 1 dead letter(s)"
    assert await ops.broker.dead_letters() == []
    code, out, _ = await cli(capsys, "dlq", "list")
    assert (code, out.strip()) == (0, "no dead letters")


@pytest.mark.anyio
async def test_dlq_requeue_given_uuids_reports_unknown_ones_and_the_task_runs_again(ops: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ops.config.max_deliveries = 0  # the first run dead-letters the task with its payload intact
    async with running_worker(ops, concurrency=1):
        record = await ops.add_task("ok", 7, timeout=TIMEOUT)
    assert record is not None and record.status == "error"
    uuid, unknown = str(record.uuid), str(new_uuid())

    code, out, err = await cli(capsys, "dlq", "requeue", uuid, unknown)
    assert code == 1
    assert out.splitlines() == ["requeued 1 dead letter(s):", f"  {uuid}"]
    assert unknown in err and uuid not in err and len(err.strip().splitlines()) == 1
    assert await ops.broker.dead_letters() == []
    requeued = await ops.get(uuid)
    assert (requeued.status, requeued.task_name, requeued.args) == ("new", "ok", (7,))

    ops.config.max_deliveries = 5
    async with running_worker(ops, concurrency=1):
        done = await ops.wait_result(uuid, TIMEOUT)
    assert done is not None and (done.status, done.returning) == ("success", 7)


@pytest.mark.anyio
async def test_dlq_requeue_needs_uuids_or_all(ops: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await cli(capsys, "dlq", "requeue")
    assert code == 2 and "--all" in err
    code, _, err = await cli(capsys, "dlq", "requeue", "--all", str(new_uuid()))
    assert code == 2 and "not both" in err


# -- workers ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_workers_lists_a_live_worker_and_the_task_it_runs(ops: Any, capsys: pytest.CaptureFixture[str]) -> None:
    started, release = anyio.Event(), anyio.Event()

    @ops.task
    async def block() -> str:
        started.set()
        await release.wait()
        return "released"

    code, out, _ = await cli(capsys, "workers")
    assert (code, out.strip()) == (0, "no live workers")
    async with running_worker(ops, concurrency=2) as worker:
        task = await ops.add_task("block")
        try:
            with anyio.fail_after(TIMEOUT):
                await started.wait()
            # The heartbeat the worker sends every third of a lease, sent now rather than waited for.
            await ops.broker.heartbeat(worker.info(), [])

            code, out, err = await cli(capsys, "workers", "--json")
            assert code == 0, err
            [row] = json.loads(out)
            assert row["worker_id"] == worker.worker_id and row["running"] == [str(task.uuid)]
            assert (row["app"], row["pid"], row["concurrency"]) == ("ops", os.getpid(), 2)
            assert 0 <= row["last_seen_seconds"] < TIMEOUT
            assert datetime.fromisoformat(row["started_at"]).timestamp() == pytest.approx(worker.started_at, abs=1)

            code, out, err = await cli(capsys, "workers")
            assert code == 0, err
            [cells] = table(out, WORKER_COLUMNS)
            assert cells[0] == worker.worker_id and cells[2:4] == [str(os.getpid()), "2"]
            assert cells[5].endswith("s") and cells[6:] == ["1", str(task.uuid)]
        finally:
            release.set()
        done = await ops.wait_result(task.uuid, TIMEOUT)
        assert done is not None and done.returning == "released"
    code, out, _ = await cli(capsys, "workers")
    assert out.strip() == "no live workers"  # a stopped worker leaves the registry


# -- errors ----------------------------------------------------------------------------------------


class UnreachableBroker:
    """A broker whose server refuses connections (only to test how the CLI reports it)."""

    lease = 30.0

    async def start(self) -> None:
        raise ConnectionRefusedError("connection refused by db:6379")

    async def stop(self) -> None:
        pass


@pytest.mark.anyio
async def test_an_unreachable_broker_is_one_line_without_the_password(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    app = QueueTasks(name="remote", broker_url="redis://bob:s3cret@db:6379/0", broker=UnreachableBroker())
    module = types.ModuleType(MODULE)
    module.app = app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for argv in (["dlq", "list"], ["dlq", "purge", "--yes"], ["workers"]):
        code, out, err = await cli(capsys, *argv)
        assert code == 1 and out == ""
        [line] = err.strip().splitlines()
        assert line.startswith("qtasks: error: cannot reach the broker at redis://bob:***@db:6379/0")
        assert "ConnectionRefusedError" in line and "broker_url" in line and "s3cret" not in err


# -- as a program ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_commands_as_a_program_on_a_fresh_app(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(textwrap.dedent("""
        from qtasks import QueueTasks
        app = QueueTasks("fresh", broker_url="memory://")
    """))
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTASKS_")}
    env["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    def qtasks(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qtasks", "-A", "m:app", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180)

    listing = qtasks("dlq", "list")
    assert (listing.returncode, listing.stdout.strip(), listing.stderr) == (0, "no dead letters", "")
    requeue = qtasks("dlq", "requeue")
    assert requeue.returncode == 2 and requeue.stdout == ""
    [line] = requeue.stderr.strip().splitlines()
    assert line.startswith("qtasks dlq requeue: error:") and "--all" in line
