"""The testing helpers: the pytest fixtures, app.join(), eager mode, the virtual clock, the test cases."""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import sys
import time
import unittest
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import anyio
import pytest
from apscheduler.triggers.interval import IntervalTrigger
from subprocesses import ROOT, child_env

from qtasks import ConfigurationError, Depends, SerializationError, hookimpl
from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.kernel.drain import queue_left
from qtasks.kernel.portal import run_blocking
from qtasks.schemas import TestConfig as ExportedTestConfig
from qtasks.schemas.test import TestConfig
from qtasks.testing import SyncVirtualClock, VirtualClock, clock_of, eager, running_worker
from qtasks.testing.memory_queue import MemoryQueue
from qtasks.tests import AsyncTestCase, SyncTestCase
from qtasks.timers import schedule

pytestmark = pytest.mark.anyio

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass
class Point:
    """A typed argument: it travels as JSON and comes back as a Point."""

    x: int


class Finished:
    """Records every record the worker reports as done."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    @hookimpl
    def qtasks_task_finished(self, worker: Any, task: Any) -> None:
        self.records.append(task)


def sync_left(app: SyncQueueTasks) -> dict[str, int]:
    """What a sync app's queue still holds (its components started first)."""

    async def left() -> dict[str, int]:
        await app._kernel.start()
        return await queue_left(app._kernel)

    return run_blocking(app._kernel, left)


@pytest.fixture
def sync_app() -> Iterator[SyncQueueTasks]:
    app = SyncQueueTasks(name="sync-testing", broker_url="memory://")
    yield app
    app.close()


# -- the plugin and its fixtures ---------------------------------------------------------------


def test_the_example_tests_pass_with_the_fixtures() -> None:
    """examples/testing overrides qtasks_app with its own app and uses the plugin's fixtures."""
    result = subprocess.run([sys.executable, "-m", "pytest", "examples/testing", "-q", "-p", "no:cacheprovider"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


async def test_the_async_fixtures_serve_record_and_give_the_worker(qtasks_app: QueueTasks, qtasks_worker: Any, qtasks_hooks: Any) -> None:
    @qtasks_app.task
    async def double(x: int) -> int:
        return 2 * x

    record = await double.add_task(21, timeout=5)
    assert (record.status, record.returning) == ("success", 42)
    assert qtasks_worker is qtasks_app.worker
    assert {"task_enqueued", "task_claimed", "task_finished", "task_acknowledged"} <= set(qtasks_hooks.names())


def test_the_sync_fixtures_serve_and_record(qtasks_sync_app: SyncQueueTasks, qtasks_sync_worker: Any, qtasks_sync_hooks: Any) -> None:
    @qtasks_sync_app.task
    def triple(x: int) -> int:
        return 3 * x

    record = triple.add_task(5, timeout=5)
    assert (record.status, record.returning) == ("success", 15)
    assert qtasks_sync_worker is qtasks_sync_app.worker
    assert "task_claimed" in qtasks_sync_hooks.names()


def test_the_sync_eager_fixture_runs_tasks_in_add_task(qtasks_sync_eager: SyncQueueTasks) -> None:
    qtasks_sync_eager.task(name="double")(lambda x: 2 * x)
    record = qtasks_sync_eager.add_task("double", 8)
    assert record.status == "new" and qtasks_sync_eager.get(record.uuid).returning == 16  # it ran in add_task


# -- app.join() ----------------------------------------------------------------------------------


async def test_join_waits_for_a_chain_of_tasks(app: QueueTasks) -> None:
    ran: list[int] = []

    @app.task
    async def step(n: int) -> int:
        ran.append(n)
        if n < 3:
            await step.add_task(n + 1)  # enqueued before this one ends: the queue never looks empty
        return n

    async with running_worker(app):
        first = await step.add_task(1)
        await app.join(timeout=10)
        assert ran == [1, 2, 3]
        assert (await app.get(first.uuid)).status == "success"
        assert await queue_left(app) == {}


def test_join_waits_for_a_chain_of_tasks_in_a_sync_app(sync_app: SyncQueueTasks) -> None:
    ran: list[int] = []

    @sync_app.task
    def step(n: int) -> int:
        ran.append(n)
        if n < 3:
            step.add_task(n + 1)
        return n

    with running_worker(sync_app):
        step.add_task(1)
        sync_app.join(timeout=10)
        assert ran == [1, 2, 3]


async def test_join_names_what_is_left_when_the_time_runs_out(app: QueueTasks, sync_app: SyncQueueTasks) -> None:
    @app.task(name="job")
    async def job() -> None:
        """Never runs: no worker."""

    sync_app.task(name="job")(lambda: None)
    await app.add_task("job")
    await app.add_task("job", countdown=60)
    with pytest.raises(TimeoutError, match=r"app 'test': the queue is not drained after 0.05s: 1 ready, 1 delayed left \(no worker"):
        await app.join(timeout=0.05)
    sync_app.add_task("job")
    with pytest.raises(TimeoutError, match="app 'sync-testing': the queue is not drained after 0.05s: 1 ready left"):
        sync_app.join(timeout=0.05)


# -- eager mode ----------------------------------------------------------------------------------


async def test_eager_refuses_an_argument_a_real_broker_refuses(app: QueueTasks, sync_app: SyncQueueTasks) -> None:
    real = QueueTasks(name="real", broker_url="sqlite:///real.sqlite3")
    for each in (app, real):
        each.task(name="job")(lambda value: value)
    with pytest.raises(SerializationError) as on_sqlite:
        await real.add_task("job", {1, 2})
    with eager(app), pytest.raises(SerializationError) as in_eager:
        await app.add_task("job", {1, 2})
    expected = "task 'job': argument 0: object of type set is not JSON serializable; pass JSON types, attrs classes or dataclasses"
    assert str(in_eager.value) == str(on_sqlite.value) == expected
    sync_app.task(name="job")(lambda value: value)
    with eager(sync_app), pytest.raises(SerializationError, match="argument 0: object of type set"):
        sync_app.add_task("job", {1, 2})
    await real.close()


async def test_eager_ends_a_task_error_when_its_result_cannot_be_stored_as_sqlite_does(app: QueueTasks) -> None:
    real = QueueTasks(name="real", broker_url="sqlite:///real.sqlite3")
    for each in (app, real):
        each.task(name="opaque")(lambda: object())
        each.task(name="pair")(lambda: (1, 2))
    async with running_worker(real):
        on_sqlite = [await real.add_task(name, timeout=10) for name in ("opaque", "pair")]
    with eager(app):
        in_eager = [await app.add_task(name, timeout=0) for name in ("opaque", "pair")]
    assert [r.status for r in in_eager] == [r.status for r in on_sqlite] == ["error", "success"]
    assert UUID_TEXT.sub("<uuid>", in_eager[0].traceback) == UUID_TEXT.sub("<uuid>", on_sqlite[0].traceback)
    assert in_eager[0].traceback.startswith("the result cannot be stored: task 'opaque'")
    stored = await real.get(on_sqlite[1].uuid)  # as another process reads it: JSON has no tuples
    assert in_eager[1].returning == stored.returning == [1, 2]
    await real.close()


def test_eager_ends_a_sync_apps_task_error_when_its_result_cannot_be_stored(sync_app: SyncQueueTasks) -> None:
    sync_app.task(name="opaque")(lambda: object())
    with eager(sync_app):
        record = sync_app.add_task("opaque", timeout=0)
    assert record.status == "error" and "the record cannot be stored as JSON: object of type object" in record.traceback


def kinds_of_tasks(app: Any, runs: list[str]) -> None:
    """Register one task of each kind on ``app``: each fails its first attempt (retried after
    30 s), takes a typed argument and a Depends value."""

    def scale() -> int:
        return 10

    @app.task(name="sync_job", retry=1, retry_delay=30)
    def sync_job(point: Point, factor: int = Depends(scale)) -> int:
        runs.append("sync")
        if runs.count("sync") == 1:
            raise ConnectionError("first attempt")
        return point.x * factor

    @app.task(name="async_job", retry=1, retry_delay=30)
    async def async_job(point: Point, factor: int = Depends(scale)) -> int:
        runs.append("async")
        if runs.count("async") == 1:
            raise ConnectionError("first attempt")
        return point.x * factor

    @app.task(name="generator_job", retry=1, retry_delay=30)
    def generator_job(point: Point, factor: int = Depends(scale)) -> Iterator[int]:
        runs.append("generator")
        if runs.count("generator") == 1:
            raise ConnectionError("first attempt")
        yield point.x
        yield point.x * factor


async def test_eager_runs_each_kind_of_task_through_the_real_lifecycle_at_once(app: QueueTasks) -> None:
    runs: list[str] = []
    kinds_of_tasks(app, runs)
    started = time.monotonic()
    with eager(app):
        records = [await app.add_task(name, Point(4), timeout=0) for name in ("sync_job", "async_job", "generator_job")]
    assert time.monotonic() - started < 2  # three retries of 15-30 s each
    assert [(r.status, r.returning, r.attempts) for r in records] == [("success", 40, 2), ("success", 40, 2), ("success", [4, 40], 2)]
    assert runs == ["sync", "sync", "async", "async", "generator", "generator"]


def test_eager_runs_each_kind_of_task_at_once_in_a_sync_app(sync_app: SyncQueueTasks) -> None:
    runs: list[str] = []
    kinds_of_tasks(sync_app, runs)
    started = time.monotonic()
    with eager(sync_app):
        records = [sync_app.add_task(name, Point(2), timeout=0) for name in ("sync_job", "async_job", "generator_job")]
    assert time.monotonic() - started < 2
    assert [(r.status, r.returning, r.attempts) for r in records] == [("success", 20, 2), ("success", 20, 2), ("success", [2, 20], 2)]


async def test_eager_runs_a_task_that_a_task_enqueues_and_delayed_tasks_at_once(app: QueueTasks, sync_app: SyncQueueTasks) -> None:
    @app.task
    async def child(x: int) -> int:
        return x + 1

    @app.task
    async def parent(x: int) -> int:
        inner = await child.add_task(x, timeout=5)  # in eager mode it has run when add_task returns
        return inner.returning * 10

    @sync_app.task
    def sync_child(x: int) -> int:
        return x - 1

    @sync_app.task
    def sync_parent(x: int) -> int:
        return sync_child.add_task(x, timeout=5).returning * 10  # from the task's thread

    with VirtualClock(app, auto=False) as clock, eager(app):
        assert (await parent.add_task(1, timeout=0)).returning == 20
        later = await child.add_task(5, countdown=3600)
        assert (await app.get(later.uuid)).returning == 6
        assert clock.offset == pytest.approx(3600, abs=5)  # the app's clock moved with eager mode's jump
    with eager(sync_app):
        assert sync_parent.add_task(3, timeout=0).returning == 20


async def test_eager_mode_refuses_what_it_cannot_run(app: QueueTasks) -> None:
    with pytest.raises(ConfigurationError, match=r"eager mode works on a memory:// app; app 'real' uses 'sqlite:///real.sqlite3'"):
        with eager(QueueTasks(name="real", broker_url="sqlite:///real.sqlite3")):
            pass
    with eager(app), pytest.raises(ConfigurationError, match="app 'test' is in eager mode already"):
        with eager(app):
            pass
    async with running_worker(app):
        with pytest.raises(ConfigurationError, match="a worker serves app 'test' in this process"):
            with eager(app):
                pass
    blocked = QueueTasks(name="blocked", broker_url="memory://", disable_plugins=["memory_broker"])
    with pytest.raises(ConfigurationError, match="'memory_broker' blocked"):
        with eager(blocked):
            pass


# -- the virtual clock ---------------------------------------------------------------------------


async def test_a_retry_and_a_countdown_complete_at_once_under_the_clock(qtasks_app: QueueTasks, qtasks_clock: Any, qtasks_worker: Any) -> None:
    attempts: list[int] = []

    @qtasks_app.task(retry=2, retry_delay=30)
    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt")
        return "ok"

    @qtasks_app.task
    def later() -> str:
        return "an hour later"

    started = time.monotonic()
    retried = await flaky.add_task(timeout=5)
    delayed = await later.add_task(countdown=60, timeout=5)
    assert time.monotonic() - started < 2
    assert (retried.status, retried.attempts, delayed.returning) == ("success", 2, "an hour later")
    assert qtasks_clock.offset > 70  # the countdown and the retry delay (15-30 s) were jumped over


def test_a_retry_and_a_countdown_complete_at_once_in_a_sync_app(qtasks_sync_app: SyncQueueTasks, qtasks_sync_clock: Any, qtasks_sync_worker: Any) -> None:
    runs: list[str] = []
    kinds_of_tasks(qtasks_sync_app, runs)
    started = time.monotonic()
    records = [qtasks_sync_app.add_task(name, Point(1), timeout=5) for name in ("sync_job", "async_job", "generator_job")]
    delayed = qtasks_sync_app.add_task("sync_job", Point(3), countdown=60, timeout=5)
    assert time.monotonic() - started < 2
    assert [r.attempts for r in records] == [2, 2, 2] and delayed.returning == 30


async def test_a_timer_every_ten_minutes_ticks_three_times_in_half_an_hour(qtasks_app: QueueTasks, qtasks_clock: Any, qtasks_worker: Any) -> None:
    finished = Finished()
    qtasks_app.add_plugin(finished)
    qtasks_app.task(name="tick")(lambda: None)
    schedule(qtasks_app, "tick", trigger=IntervalTrigger(minutes=10))
    started = time.monotonic()
    await qtasks_clock.advance(1800)
    assert time.monotonic() - started < 2
    ticks = [datetime.fromisoformat(r.extra["timer"]["tick"]) for r in finished.records]
    assert [(b - a).total_seconds() for a, b in zip(ticks, ticks[1:])] == [600, 600]
    assert [r.status for r in finished.records] == ["success"] * 3


def test_a_timer_ticks_three_times_in_half_an_hour_in_a_sync_app(qtasks_sync_app: SyncQueueTasks, qtasks_sync_clock: Any, qtasks_sync_worker: Any) -> None:
    ran: list[int] = []
    qtasks_sync_app.task(name="tick")(lambda: ran.append(1))
    schedule(qtasks_sync_app, "tick", trigger=IntervalTrigger(minutes=10))
    qtasks_sync_clock.advance(1800)
    assert len(ran) == 3


@pytest.mark.parametrize("disabled", [[], ["timers"]])
async def test_advance_without_a_worker_only_moves_time(disabled: list[str]) -> None:
    app = QueueTasks(name="clocked", broker_url="memory://", disable_plugins=disabled)
    app.task(name="job")(lambda: None)
    with VirtualClock(app, auto=False) as clock:
        await app.add_task("job", countdown=3600)
        queue = MemoryQueue(app.broker)
        start = clock.time()
        await clock.advance(3000)
        assert 590 < queue.next_due() <= 600
        await clock.advance(600)
        assert queue.next_due() is None and queue.busy() == {"due": 1}
        assert clock.time() - start == pytest.approx(3600, abs=5) and clock.now().tzinfo is not None
        async with running_worker(app):
            await app.join(timeout=2)  # due now: it runs at once


async def test_advance_waits_for_the_worker_and_names_what_keeps_it_busy(app: QueueTasks) -> None:
    started, release = anyio.Event(), anyio.Event()

    @app.task
    async def blocked() -> None:
        started.set()
        await release.wait()

    with VirtualClock(app) as clock:
        async with running_worker(app):
            await blocked.add_task()
            await started.wait()
            with pytest.raises(TimeoutError, match=r"virtual clock of app 'test': the worker is still busy after 0.05s: 1 leased"):
                await clock.advance(10, timeout=0.05)
            release.set()
            await app.join(timeout=5)


async def test_the_clock_refuses_what_it_cannot_move(app: QueueTasks, sync_app: SyncQueueTasks) -> None:
    with pytest.raises(ConfigurationError, match="VirtualClock works on a memory:// app; app 'real' uses 'sqlite:///real.sqlite3'"):
        VirtualClock(QueueTasks(name="real", broker_url="sqlite:///real.sqlite3"))
    with pytest.raises(TypeError, match="is a sync app: use SyncVirtualClock"):
        VirtualClock(sync_app)
    with pytest.raises(TypeError, match="is an async app: use VirtualClock"):
        SyncVirtualClock(app)
    with VirtualClock(app, auto=False) as clock:
        assert clock_of(app) is clock
        with pytest.raises(ConfigurationError, match="app 'test' has a virtual clock already"):
            VirtualClock(app)
        with pytest.raises(ValueError, match="advance: seconds must be a number >= 0, got -1"):
            await clock.advance(-1)
    assert clock_of(app) is None
    async with running_worker(app):
        with pytest.raises(ConfigurationError, match="create the clock before the worker"):
            VirtualClock(app)


# -- AsyncTestCase, SyncTestCase and TestConfig --------------------------------------------------


def test_test_config_constructors_are_the_originals() -> None:
    assert ExportedTestConfig is TestConfig
    assert TestConfig() == TestConfig(False, False, False, False, False)
    assert TestConfig.full() == TestConfig(worker=True, broker=True, storage=True, global_config=True, plugins=True)
    assert TestConfig.only_worker() == TestConfig(worker=True) and TestConfig.only_worker(plugins=True).plugins
    assert TestConfig.only_broker() == TestConfig(broker=True) and TestConfig.only_broker(True).plugins
    assert TestConfig.full_broker() == TestConfig(broker=True, storage=True, global_config=True, plugins=True)


async def test_an_async_test_case_serves_with_full_and_stops(app: QueueTasks) -> None:
    app.task(name="double")(lambda x: 2 * x)
    async with AsyncTestCase(app) as case:  # start() before settings(): no worker yet
        assert app.worker is None
    case.settings(TestConfig.full())
    await case.start()
    assert app.worker is not None
    record = await case.add_task("double", 4, timeout=5)
    assert (record.returning, (await case.get(record.uuid)).status) == (8, "success")
    await case.stop()
    assert app.worker is None and not app.components.started


def test_an_async_test_case_in_unittest_starts_and_stops_in_different_tasks() -> None:
    app = QueueTasks(name="unittest", broker_url="memory://")
    app.task(name="double")(lambda x: 2 * x)

    class Case(unittest.IsolatedAsyncioTestCase):
        async def asyncSetUp(self) -> None:
            self.case = AsyncTestCase(app=app)
            self.case.settings(TestConfig.full())
            await self.case.start()

        async def asyncTearDown(self) -> None:
            await self.case.stop()

        async def test_double(self) -> None:
            self.assertEqual((await self.case.add_task("double", 5, timeout=5)).returning, 10)

    result = unittest.TextTestRunner(stream=io.StringIO()).run(unittest.defaultTestLoader.loadTestsFromTestCase(Case))
    assert result.wasSuccessful() and result.testsRun == 1, result.errors + result.failures


async def test_only_worker_runs_in_add_task_and_only_broker_queues(app: QueueTasks, sync_app: SyncQueueTasks) -> None:
    app.task(name="double")(lambda x: 2 * x)
    sync_app.task(name="double")(lambda x: 2 * x)
    cases = AsyncTestCase(app), SyncTestCase(sync_app)
    for case in cases:
        case.settings(TestConfig.only_worker())
    ran = await cases[0].add_task("double", 3), cases[1].add_task("double", 4)
    assert [(r.status, r.returning) for r in ran] == [("success", 6), ("success", 8)]
    for config in (TestConfig.only_broker(), TestConfig.full_broker()):
        for case in cases:
            case.settings(config)
        queued = await cases[0].add_task("double", 3), cases[1].add_task("double", 4)
        assert [r.status for r in queued] == ["new", "new"]
    assert await queue_left(app) == {"ready": 2} and sync_left(sync_app) == {"ready": 2}
    for case in cases:
        case.settings(TestConfig())
    with pytest.raises(ConfigurationError, match="runs neither the worker nor the broker, so add_task has nowhere to go"):
        await cases[0].add_task("double", 1)
    with pytest.raises(ConfigurationError, match="call settings"):
        cases[1].add_task("double", 1)
    await cases[0].stop()
    cases[1].stop()


def test_components_left_out_are_in_memory_stand_ins_until_stop() -> None:
    app = SyncQueueTasks(name="on-sqlite", broker_url="sqlite:///cases.sqlite3")
    app.task(name="double")(lambda x: 2 * x)
    case = SyncTestCase(app)
    case.settings(TestConfig.only_worker())
    assert case.add_task("double", 21).returning == 42
    assert [type(app.components.get(w)).__name__ for w in ("broker", "storage", "global_config")] == ["MemoryBroker", "MemoryStorage", "MemoryGlobalConfig"]
    case.stop()
    assert type(app.broker).__name__ == "SqliteBroker"
    case.settings(TestConfig.only_broker())
    with case:
        case.add_task("double", 1)
        assert (type(app.broker).__name__, type(app.storage).__name__) == ("SqliteBroker", "MemoryStorage")
    assert sync_left(app) == {"ready": 1}  # queued in the SQLite file, whose records stayed empty
    with pytest.raises(ConfigurationError, match="has started its components already"):
        SyncTestCase(app).settings(TestConfig.only_worker())
    app.close()


async def test_plugins_false_sets_the_apps_own_plugins_aside_until_stop(app: QueueTasks) -> None:
    app.task(name="double")(lambda x: 2 * x)
    finished = Finished()
    name = app.add_plugin(finished)
    case = AsyncTestCase(app, name="aside")
    case.settings(TestConfig.only_worker())
    assert not app.pm.has_plugin(name) and case.name == "aside"
    await case.add_task("double", 1)
    assert finished.records == []
    await case.stop()
    assert app.pm.has_plugin(name)
    case.settings(TestConfig.only_worker(plugins=True))
    await case.add_task("double", 1)
    assert [r.returning for r in finished.records] == [2]
    await case.stop()


def test_each_test_case_takes_its_own_kind_of_app(app: QueueTasks, sync_app: SyncQueueTasks) -> None:
    with pytest.raises(TypeError, match="is a sync app: use qtasks.tests.SyncTestCase"):
        AsyncTestCase(sync_app)
    with pytest.raises(TypeError, match="is an async app: use qtasks.tests.AsyncTestCase"):
        SyncTestCase(app)
