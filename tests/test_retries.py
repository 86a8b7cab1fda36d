"""Retries: the attempts, the backoff held by the broker, the kept errors, the option checks."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.retries import backoff_delay
from qtasks.errors import ConfigurationError, UnknownOptionError
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio


class Flaky(Exception):
    """The error the tasks below raise on purpose."""


class FlakierStill(Flaky):
    """A subclass: ``retry_on_exc=[Flaky]`` retries it too."""


class Statuses:
    """Records the status of every record the worker reports as done (``retry`` ones included)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def qtasks_task_finished(self, worker: Any, task: Any) -> None:
        self.seen.append(task.status)


def test_the_delay_grows_by_the_backoff_up_to_the_ceiling_with_equal_jitter() -> None:
    assert [backoff_delay(n, 1.0, 2.0, 5.0, draw=lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert [backoff_delay(n, 1.0, 2.0, 5.0, draw=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert backoff_delay(3, 0.0, 2.0, 5.0) == 0.0
    assert 0.25 <= backoff_delay(1, 0.5, 1.0, 5.0) <= 0.5


async def test_a_failing_task_is_retried_after_growing_delays_and_keeps_each_error(app: QueueTasks) -> None:
    """Two failures, then success: the caller's wait covers the retries; the record has three
    attempts and both errors; the broker held each retry for at least half its delay."""
    statuses = Statuses()
    app.add_plugin(statuses)
    starts: list[float] = []

    @app.task(retry=3, retry_delay=0.2, retry_backoff=2.0)
    async def flaky() -> str:
        starts.append(time.monotonic())
        if len(starts) < 3:
            raise Flaky(f"attempt {len(starts)} failed")
        return "third time lucky"

    async with running_worker(app, concurrency=2):
        record = await flaky.add_task(timeout=10)
    assert record is not None and (record.status, record.returning) == ("success", "third time lucky")
    assert record.attempts == 3
    assert [e.strip().splitlines()[-1] for e in record.errors] == [f"{__name__}.Flaky: attempt 1 failed", f"{__name__}.Flaky: attempt 2 failed"]
    assert statuses.seen == ["retry", "retry", "success"]
    first_gap, second_gap = starts[1] - starts[0], starts[2] - starts[1]
    assert first_gap >= 0.1 and second_gap >= 0.2  # equal jitter: at least half of 0.2 s, then of 0.4 s


async def test_retries_run_out_and_the_task_ends_error_with_every_attempts_error(app: QueueTasks) -> None:
    @app.task(retry=2, retry_delay=0)
    async def doomed() -> None:
        raise Flaky("always")

    async with running_worker(app):
        record = await doomed.add_task(timeout=10)
    assert record is not None and record.status == "error"
    assert record.attempts == 3 and len(record.errors) == 3
    assert record.traceback == record.errors[-1] and "Flaky: always" in record.traceback


async def test_retry_on_exc_retries_subclasses_only(app: QueueTasks) -> None:
    runs: list[str] = []

    @app.task(retry=1, retry_delay=0, retry_on_exc=[Flaky])
    async def picky(kind: str) -> str:
        runs.append(kind)
        if runs.count(kind) == 1:
            raise FlakierStill("retried") if kind == "sub" else KeyError("not retried")
        return "ok"

    async with running_worker(app):
        retried = await picky.add_task("sub", timeout=10)
        failed = await picky.add_task("other", timeout=10)
    assert (retried.status, retried.attempts) == ("success", 2)
    assert (failed.status, failed.attempts, len(failed.errors)) == ("error", 1, 1)


def test_a_sync_task_in_a_sync_app_is_retried() -> None:
    app = SyncQueueTasks(name="sync-retries", broker_url="memory://")
    runs: list[int] = []

    @app.task(retry=1, retry_delay=0.05)
    def once_broken(x: int) -> int:
        runs.append(x)
        if len(runs) == 1:
            raise Flaky("first run")
        return x * 2

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        record = once_broken.add_task(21, timeout=10)
    finally:
        app.stop()
        worker.join(10)
    assert record is not None and (record.status, record.returning, record.attempts) == ("success", 42, 2)
    assert len(record.errors) == 1 and "Flaky: first run" in record.errors[0]


@pytest.mark.parametrize(("options", "message"), [
    ({"retry": -1}, "retry=-1: use a whole number of retries >= 0"),
    ({"retry": 2, "retry_delay": "soon"}, "retry_delay='soon': use a number of seconds >= 0"),
    ({"retry": 2, "retry_backoff": 0.5}, "retry_backoff=0.5: use a factor >= 1"),
    ({"retry": 2, "retry_max_delay": -3}, "retry_max_delay=-3: use a number of seconds >= 0"),
    ({"retry": 2, "retry_on_exc": [42]}, "retry_on_exc=[42]: use a list of exception classes"),
])
def test_bad_retry_options_name_the_task_and_the_fix(options: dict[str, Any], message: str) -> None:
    app = QueueTasks(name="bad-retries", broker_url="memory://")
    with pytest.raises(ConfigurationError) as caught:
        app.task(name="job", **options)(lambda: None)
    assert str(caught.value) == f"task 'job': {message}" or str(caught.value).startswith(f"task 'job': {message}")


@pytest.mark.parametrize("option", ["retry", "retry_delay", "retry_backoff", "retry_max_delay", "retry_on_exc"])
def test_every_retry_option_names_the_blocked_plugin(option: str) -> None:
    app = QueueTasks(name="no-retries", broker_url="memory://", disable_plugins=["retries"])
    with pytest.raises(UnknownOptionError, match=f"option {option!r} belongs to plugin 'retries', which is disabled"):
        app.task(**{option: 1})(lambda: None)
