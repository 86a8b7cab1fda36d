"""Cancel from outside: queued tasks never run, running async tasks are cancelled, sync ones see ``ctx.cancelled``."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.testing import running_worker
from subprocesses import child_env, worker_process

pytestmark = pytest.mark.anyio
WAIT = 10.0


async def test_a_running_async_task_is_cancelled_and_its_slot_freed(app: QueueTasks) -> None:
    started = anyio.Event()
    cleaned_up: list[str] = []

    @app.task
    async def forever() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cleaned_up.append("finally")

    @app.task
    async def quick() -> str:
        return "quick"

    async with running_worker(app, concurrency=1):
        task = await forever.add_task()
        with anyio.fail_after(WAIT):
            await started.wait()
        assert await task.cancel_async("user asked") is True
        final = await app.wait_result(task.uuid, WAIT)
        after = await quick.add_task(timeout=WAIT)  # the one slot is free again
    assert (final.status, final.cancel_reason) == ("cancel", "user asked")
    assert cleaned_up == ["finally"] and after.returning == "quick"
    assert await app.cancel(task.uuid) is False  # finished: nothing to cancel


async def test_a_delayed_task_cancelled_never_runs(app: QueueTasks) -> None:
    ran: list[str] = []

    @app.task
    async def job(label: str) -> str:
        ran.append(label)
        return label

    delayed = await job.add_task("delayed", countdown=0.2)
    assert await app.cancel(delayed.uuid, "not any more") is True
    async with running_worker(app, concurrency=1):
        later = await job.add_task("later", countdown=0.3, timeout=WAIT)  # due after the cancelled one
    assert later.returning == "later" and ran == ["later"]
    record = await app.get(delayed.uuid)
    assert (record.status, record.cancel_reason) == ("cancel", "not any more")


async def test_a_task_scoped_dependency_closes_once_when_the_task_is_cancelled(app: QueueTasks) -> None:
    from qtasks.plugins import Depends

    events: list[str] = []
    started = anyio.Event()

    async def session() -> Any:
        events.append("open")
        try:
            yield "session"
        finally:
            events.append("close")

    @app.task
    async def uses(db: Any = Depends(session)) -> None:
        started.set()
        await anyio.sleep_forever()

    async with running_worker(app):
        task = await uses.add_task()
        with anyio.fail_after(WAIT):
            await started.wait()
        await app.cancel(task.uuid, "stop")
        final = await app.wait_result(task.uuid, WAIT)
    assert final.status == "cancel" and events == ["open", "close"]


async def test_an_async_generator_task_is_cancelled_between_values(app: QueueTasks) -> None:
    second = anyio.Event()

    @app.task
    async def counts() -> Any:
        yield 1
        second.set()
        await anyio.sleep_forever()
        yield 2

    async with running_worker(app, concurrency=1):
        task = await counts.add_task()
        with anyio.fail_after(WAIT):
            await second.wait()
        assert await app.cancel(task.uuid, "enough") is True
        final = await app.wait_result(task.uuid, WAIT)
    assert (final.status, final.cancel_reason) == ("cancel", "enough")


async def test_a_running_sync_task_sees_ctx_cancelled_and_ends_cancel(app: QueueTasks) -> None:
    started = threading.Event()
    checks: list[bool] = []

    @app.task(echo=True)
    def polls(self: Any) -> str:
        started.set()
        while not self.ctx.cancelled:
            checks.append(False)
            threading.Event().wait(0.005)
        checks.append(True)
        self.ctx.cancel("saw it")
        return "never"

    async with running_worker(app, concurrency=1):
        task = await polls.add_task()
        with anyio.fail_after(WAIT):
            while not started.is_set():
                await anyio.sleep(0.001)
        assert await app.cancel(task.uuid, "ignored: the task gives its own reason") is True
        final = await app.wait_result(task.uuid, WAIT)
    assert (final.status, final.cancel_reason) == ("cancel", "saw it")
    assert checks[-1] is True


async def test_ctx_sleep_of_a_sync_task_wakes_at_once_when_cancelled(app: QueueTasks) -> None:
    started = threading.Event()

    @app.task(echo=True)
    def naps(self: Any) -> str:
        started.set()
        self.ctx.sleep(60)  # raises TaskCancelError when cancelled
        return "slept"

    async with running_worker(app, concurrency=1):
        task = await naps.add_task()
        with anyio.fail_after(WAIT):
            while not started.is_set():
                await anyio.sleep(0.001)
        with anyio.fail_after(WAIT):  # far less than the 60 s nap
            assert await app.cancel(task.uuid, "wake up") is True
            final = await app.wait_result(task.uuid, WAIT)
    assert (final.status, final.cancel_reason) == ("cancel", "wake up")


def test_result_cancel_in_a_sync_app() -> None:
    app = SyncQueueTasks(name="cancel-sync", broker_url="memory://")
    started = threading.Event()

    @app.task(echo=True)
    def naps(self: Any) -> str:
        started.set()
        self.ctx.sleep(60)
        return "slept"

    queued = naps.add_task()
    assert queued.cancel("not needed") is True  # still queued: it never runs
    assert app.get(queued.uuid).status == "cancel"
    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        running = naps.add_task()
        assert started.wait(WAIT)
        assert running.cancel("stop") is True
        final = running.wait_result(WAIT)
        assert (final.status, final.cancel_reason) == ("cancel", "stop")
    finally:
        app.stop()
        worker.join(WAIT)
        app.close()
    assert not worker.is_alive()


# -- across processes: the request travels through the global config ------------------------------

JOBS = '''
import threading
from qtasks.asyncio import QueueTasks

app = QueueTasks(name="cancel-jobs")

@app.task
async def forever() -> None:
    import anyio
    await anyio.sleep_forever()

@app.task(echo=True)
def polls(self) -> None:
    while not self.ctx.cancelled:
        threading.Event().wait(0.01)
    self.ctx.cancel(f"stopped by request: {self.ctx.task_uuid}")
'''


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Any]:
    """A worker process on ``jobs.py`` (the default SQLite file in ``tmp_path``, the test's cwd)."""
    with worker_process(tmp_path, JOBS, concurrency=2) as process:
        yield process


async def _until_running(app: QueueTasks, uuid: Any) -> None:
    with anyio.fail_after(30):
        while (await app.get(uuid)).status != "process":
            await anyio.sleep(0.01)


@pytest.mark.slow
async def test_a_task_running_in_another_process_is_cancelled_by_api_and_cli(tmp_path: Path, worker: Any) -> None:
    app = QueueTasks(name="cancel-jobs")
    try:
        forever = await app.add_task("forever")
        polls = await app.add_task("polls")
        await _until_running(app, forever.uuid)
        await _until_running(app, polls.uuid)
        assert await app.cancel(forever.uuid, "from the API") is True
        final = await app.wait_result(forever.uuid, 30)
        assert (final.status, final.cancel_reason) == ("cancel", "from the API")
        done = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "qtasks", "-A", "jobs:app", "task", "cancel", str(polls.uuid)],
            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60))
        assert done.returncode == 0, done.stderr
        assert f"asked the worker running {polls.uuid} to stop it" in done.stdout
        final = await app.wait_result(polls.uuid, 30)
        assert (final.status, final.cancel_reason) == ("cancel", f"stopped by request: {polls.uuid}")
        again = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "qtasks", "-A", "jobs:app", "task", "cancel", str(polls.uuid)],
            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60))
        assert again.returncode == 1 and "it already ended with status 'cancel'" in again.stderr
        bad = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "qtasks", "-A", "jobs:app", "task", "cancel", "not-a-uuid"],
            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60))
        assert bad.returncode == 2 and "is not a task uuid" in bad.stderr
        assert await app.global_config.component.get_all("qtasks:cancel:cancel-jobs") == {}  # every request was taken
    finally:
        await app.close()
