"""max_time: an async task is cancelled at the limit, a sync one is abandoned; both free their slot."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from qtasks.asyncio import QueueTasks
from qtasks.errors import ConfigurationError
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio


async def test_an_async_task_is_cancelled_at_its_limit(app: QueueTasks) -> None:
    cleaned_up = anyio.Event()

    @app.task(max_time=0.2)
    async def slow() -> str:
        try:
            await anyio.sleep(30)
        finally:
            cleaned_up.set()  # the task is really cancelled, not left running
        return "never"

    async with running_worker(app, concurrency=1):
        began = time.monotonic()
        record = await slow.add_task(timeout=10)
        took = time.monotonic() - began
    assert record is not None and record.status == "error"
    assert "TimeoutError" in record.traceback and "max_time=0.2s" in record.traceback
    assert cleaned_up.is_set() and took < 5


async def test_a_sync_task_ends_error_at_its_limit_and_frees_its_slot(app: QueueTasks) -> None:
    """With one slot, a sync task stuck past its limit is recorded ``error`` at the limit, the next
    task runs while the stuck thread still runs, and the stuck thread's late result is dropped."""
    release = threading.Event()
    finished_late = threading.Event()

    @app.task(max_time=0.2)
    def stuck() -> str:
        release.wait(30)
        finished_late.set()
        return "late"

    @app.task
    def quick() -> str:
        return "quick"

    try:
        async with running_worker(app, concurrency=1):
            first = await stuck.add_task(timeout=10)
            second = await quick.add_task(timeout=10)
            assert not finished_late.is_set()  # the stuck thread is still running
            release.set()
            assert await anyio.to_thread.run_sync(finished_late.wait, 5)
    finally:
        release.set()
    assert first is not None and first.status == "error" and "max_time=0.2s" in first.traceback
    assert second is not None and (second.status, second.returning) == ("success", "quick")
    assert (await app.get(first.uuid)).status == "error"  # the late "late" never replaced it


async def test_a_sync_generator_stuck_between_values_ends_error_at_its_limit(app: QueueTasks) -> None:
    release = threading.Event()

    @app.task(max_time=0.2)
    def pages() -> Any:
        yield 1
        release.wait(30)  # stuck before the second value
        yield 2

    try:
        async with running_worker(app, concurrency=1):
            began = time.monotonic()
            record = await pages.add_task(timeout=10)
            took = time.monotonic() - began
    finally:
        release.set()
    assert record is not None and record.status == "error" and "max_time=0.2s" in record.traceback
    assert took < 5


@pytest.mark.parametrize("value", [0, -1, "1s", True])
def test_a_bad_max_time_names_the_fix(value: Any) -> None:
    app = QueueTasks(name="bad-limit", broker_url="memory://")
    with pytest.raises(ConfigurationError, match=rf"task 'job': max_time={value!r}: use a number of seconds > 0"):
        app.task(name="job", max_time=value)(lambda: None)


async def test_blocking_the_time_limits_plugin_rejects_max_time() -> None:
    from qtasks.errors import UnknownOptionError

    app = QueueTasks(name="no-limits", broker_url="memory://", disable_plugins=["time_limits"])
    with pytest.raises(UnknownOptionError, match="option 'max_time' belongs to plugin 'time_limits', which is disabled"):
        @app.task(max_time=1)
        async def job() -> None: ...


def test_max_time_in_a_sync_app() -> None:
    from qtasks import QueueTasks as SyncQueueTasks

    app = SyncQueueTasks(name="limits-sync", broker_url="memory://")
    release = threading.Event()

    @app.task(max_time=0.2)
    def stuck() -> str:
        release.wait(30)
        return "late"

    @app.task(max_time=0.2)
    async def slow() -> str:
        await anyio.sleep(30)
        return "late"

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        first = stuck.add_task(timeout=10)
        second = slow.add_task(timeout=10)
    finally:
        release.set()
        app.stop()
        worker.join(10)
        app.close()
    for record in (first, second):
        assert record.status == "error" and "ran past max_time=0.2s" in record.traceback
