"""The worker: priority then FIFO, the concurrency bound, graceful stop and hand-back."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.from_thread
import pytest

from qtasks.asyncio import QueueTasks
from qtasks.errors import ConfigurationError
from qtasks.kernel.worker import Worker
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio


async def test_lower_priority_number_first_then_fifo(app: QueueTasks) -> None:
    order: list[str] = []

    @app.task
    async def record(label: str) -> None:
        order.append(label)

    for label, priority in [("p5-a", 5), ("p1-a", 1), ("p5-b", 5), ("p0", 0), ("p1-b", 1), ("p5-c", 5)]:
        last = await record.add_task(label, priority=priority)
    async with running_worker(app, concurrency=1):
        assert (await app.wait_result(last.uuid, 5)).status == "success"
    assert order == ["p0", "p1-a", "p1-b", "p5-a", "p5-b", "p5-c"]


async def test_concurrency_is_bounded(app: QueueTasks) -> None:
    running = 0
    peak = 0
    release = anyio.Event()
    three_running = anyio.Event()

    @app.task
    async def hold() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            three_running.set()
        await release.wait()
        running -= 1

    async with running_worker(app, concurrency=3) as worker:
        tasks = [await hold.add_task() for _ in range(10)]
        with anyio.fail_after(5):
            await three_running.wait()
        for _ in range(20):  # give the worker every chance to start a fourth task
            await anyio.sleep(0)
        assert running == 3 and len(worker.running) == 3
        assert await app.broker.depth() == 7
        release.set()
        for task in tasks:
            assert (await app.wait_result(task.uuid, 5)).status == "success"
    assert peak == 3


async def test_sync_tasks_respect_the_bound_too(app: QueueTasks) -> None:
    import threading

    lock = threading.Lock()
    state = {"running": 0, "peak": 0}
    gate = threading.Event()
    two_running = anyio.Event()

    @app.task
    def hold() -> None:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
            if state["running"] == 2:
                anyio.from_thread.run_sync(two_running.set)
        gate.wait(5)
        with lock:
            state["running"] -= 1

    async with running_worker(app, concurrency=2):
        tasks = [await hold.add_task() for _ in range(6)]
        with anyio.fail_after(5):
            await two_running.wait()
        gate.set()
        for task in tasks:
            assert (await app.wait_result(task.uuid, 5)).status == "success"
    assert state["peak"] == 2


async def test_graceful_stop_finishes_running_tasks_and_hands_back_the_rest(app: QueueTasks) -> None:
    started = anyio.Event()
    finish = anyio.Event()

    @app.task
    async def slow(label: str) -> str:
        started.set()
        await finish.wait()
        return label

    running = await slow.add_task("running")
    queued = await slow.add_task("queued")
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 1, False)
        with anyio.fail_after(5):
            await started.wait()
        app.request_stop()
        finish.set()
    assert (await app.get(running.uuid)).status == "success"
    assert (await app.get(queued.uuid)).status == "new"
    assert await app.broker.depth() == 1


async def test_past_the_grace_period_running_tasks_are_handed_back() -> None:
    app = QueueTasks(name="grace")
    app.config.graceful_stop_timeout = 0.05
    started = anyio.Event()
    cancelled = []

    @app.task
    async def stuck() -> None:
        started.set()
        try:
            await anyio.sleep(30)
        except BaseException:
            cancelled.append(True)
            raise

    task = await stuck.add_task()
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)
        with anyio.fail_after(5):
            await started.wait()
        app.request_stop()
    assert cancelled == [True]
    assert (await app.get(task.uuid)).status == "new"
    assert await app.broker.depth() == 1
    # a new worker picks the handed-back task up again
    started = anyio.Event()
    app.config.graceful_stop_timeout = 5
    done = anyio.Event()

    @app.task(name="stuck2")
    async def other() -> None:
        done.set()

    app.tasks["stuck"].func = other.definition.func
    async with running_worker(app):
        record = await app.wait_result(task.uuid, 5)
    assert record is not None and record.status == "success" and record.attempts == 2


async def test_invalid_concurrency(app: QueueTasks) -> None:
    with pytest.raises(ConfigurationError, match="positive integer"):
        Worker(app, 0)


async def test_worker_startup_fires_after_components(app: QueueTasks, hook_recorder: Any) -> None:
    recorder = hook_recorder(app.pm.specs, only={"qtasks_startup"})
    app.add_plugin(recorder)
    async with running_worker(app):
        pass
    assert [c["component"] for c in recorder.of("startup")] == ["app", "broker", "storage", "global_config", "worker"]


async def test_a_plugin_raising_around_a_task_fails_that_task_not_the_worker(app: QueueTasks) -> None:
    from qtasks import hookimpl

    class Faulty:
        @hookimpl
        def qtasks_task_status(self, worker: Any, task: Any) -> None:
            if task.kwargs.get("explode"):
                raise RuntimeError("plugin bug")

        @hookimpl
        def qtasks_task_failed(self, worker: Any, call: Any, error: BaseException) -> None:
            if call.kwargs.get("explode_on_failure"):
                raise RuntimeError("decider bug")

    app.add_plugin(Faulty())

    @app.task
    async def work(**kwargs: Any) -> str:
        if kwargs.get("explode_on_failure"):
            raise ValueError("task error")
        return "done"

    async with running_worker(app, concurrency=1):
        broken = await work.add_task(explode=True, timeout=5)
        undecided = await work.add_task(explode_on_failure=True, timeout=5)
        fine = await work.add_task(timeout=5)
    assert broken.status == "error" and "RuntimeError: plugin bug" in broken.traceback
    assert undecided.status == "error" and "RuntimeError: decider bug" in undecided.traceback
    assert fine.status == "success"


async def test_failures_around_the_task_keep_the_outcome_honest(app: QueueTasks) -> None:
    import contextlib

    from qtasks import hookimpl
    from qtasks.errors import TaskCancelError

    runs: list[str] = []

    class Plugins:
        @hookimpl
        def qtasks_task_scope(self, worker: Any, call: Any) -> Any:
            return contextlib.suppress(LookupError) if call.definition.name == "suppressed" else None

        @hookimpl
        def qtasks_task_result(self, worker: Any, call: Any, result: Any) -> Any:
            if result == "bad result":
                raise RuntimeError("result plugin bug")
            return None

        @hookimpl
        def qtasks_task_received(self, worker: Any, task: Any) -> None:
            if task.kwargs.get("cancel_on_receive"):
                raise TaskCancelError("cancelled by a plugin")

        @hookimpl
        def qtasks_task_finished(self, worker: Any, task: Any) -> None:
            if task.kwargs.get("signal_after"):
                raise TaskCancelError("too late to cancel")

    app.add_plugin(Plugins())

    @app.task
    async def suppressed() -> None:
        raise KeyError("swallowed by the scope")

    @app.task(retry=3)
    async def once(**kwargs: Any) -> str:
        runs.append("run")
        return "bad result" if kwargs.get("bad") else "fine"

    async with running_worker(app, concurrency=1):
        quiet = await suppressed.add_task(timeout=5)
        bad = await once.add_task(bad=True, timeout=5)
        assert runs == ["run"]  # a failing result plugin never runs the function again
        cancelled = await once.add_task(cancel_on_receive=True, timeout=5)
        late = await once.add_task(signal_after=True, timeout=5)
    assert (quiet.status, quiet.returning) == ("success", None)
    assert bad.status == "error" and "result plugin bug" in bad.traceback
    assert (cancelled.status, cancelled.cancel_reason) == ("cancel", "cancelled by a plugin")
    assert (late.status, late.returning) == ("success", "fine")
    assert (await app.get(late.uuid)).status == "success"


async def test_a_failing_claim_is_retried_not_fatal(app: QueueTasks, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from qtasks.kernel import worker as worker_module

    monkeypatch.setattr(worker_module, "CLAIM_RETRY_DELAY", 0.01)
    failures = [RuntimeError("broker down"), RuntimeError("still down")]

    @app.task
    async def ok() -> str:
        return "ok"

    await app.start()
    real_claim = app.broker.claim

    async def flaky_claim(*args: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return await real_claim(*args)

    monkeypatch.setattr(app.broker, "claim", flaky_claim)
    with caplog.at_level("ERROR", logger="qtasks.worker"):
        async with running_worker(app, concurrency=1):
            task = await ok.add_task(timeout=5)
    assert task.status == "success" and failures == []
    assert [r.getMessage() for r in caplog.records if "claiming" in r.getMessage()] == [
        "claiming from the broker failed (RuntimeError: broker down); retrying with backoff up to 2.0s"
    ]


async def test_add_task_validates_priority_and_timeout(app: QueueTasks) -> None:
    with pytest.raises(TypeError, match="priority must be an int"):
        await app.add_task("x", priority="high")
    with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
        await app.add_task("x", timeout=-1)
