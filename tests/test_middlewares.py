"""Middlewares (per task and per app) and executor classes with overridable steps."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from qtasks import Decision
from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.executor import TaskExecutor
from qtasks.errors import ConfigurationError, UnknownOptionError
from qtasks.middlewares import TaskMiddleware
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio
WAIT = 10.0


def recording(label: str, log: list[str]) -> type[TaskMiddleware]:
    class Recorder(TaskMiddleware):
        def __call__(self) -> None:
            log.append(f"{label}:{self.task_executor.definition.name}")

    return Recorder


class DoubleFirstArgument(TaskMiddleware):
    """Before: changes the arguments the function gets."""

    async def __call__(self) -> None:
        state = self.task_executor
        state.args = (state.args[0] * 2, *state.args[1:])


class Stringify(TaskMiddleware):
    """After: changes the result that is stored."""

    def __call__(self) -> None:
        self.task_executor.result = f"<{self.task_executor.result}>"


def _register(app: Any, log: list[str]) -> None:
    @app.task(middlewares_before=[DoubleFirstArgument, recording("task-before", log)], middlewares_after=[Stringify, recording("task-after", log)])
    async def coroutine(x: int) -> int:
        log.append("run:coroutine")
        return x + 1

    @app.task(middlewares_before=[DoubleFirstArgument, recording("task-before", log)], middlewares_after=[Stringify, recording("task-after", log)])
    def function(x: int) -> int:
        log.append("run:function")
        return x + 1

    app.add_middleware(recording("app-before", log))
    app.add_middleware(recording("app-after", log), position="after")


async def test_middlewares_change_arguments_and_results_in_the_same_order_for_sync_and_async(app: QueueTasks) -> None:
    log: list[str] = []
    _register(app, log)
    async with running_worker(app, concurrency=1):
        first = await app.add_task("coroutine", 5, timeout=WAIT)
        second = await app.add_task("function", 5, timeout=WAIT)
    assert (first.returning, second.returning) == ("<11>", "<11>")
    for name in ("coroutine", "function"):
        assert [entry for entry in log if entry.endswith(name)] == [
            f"app-before:{name}", f"task-before:{name}", f"run:{name}", f"task-after:{name}", f"app-after:{name}",
        ]


def test_middlewares_in_a_sync_app() -> None:
    app = SyncQueueTasks(name="mw-sync", broker_url="memory://")
    log: list[str] = []
    _register(app, log)
    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        record = app.add_task("function", 1, timeout=WAIT)
    finally:
        app.stop()
        worker.join(WAIT)
        app.close()
    assert record.returning == "<3>"
    assert log == ["app-before:function", "task-before:function", "run:function", "task-after:function", "app-after:function"]


async def test_a_raising_middleware_fails_the_task_before_the_function_runs(app: QueueTasks) -> None:
    ran: list[str] = []

    class Refuse(TaskMiddleware):
        def __call__(self) -> None:
            raise PermissionError("not allowed")

    @app.task(middlewares_before=[Refuse])
    async def guarded() -> None:
        ran.append("guarded")

    async with running_worker(app):
        record = await guarded.add_task(timeout=WAIT)
    assert record.status == "error" and "PermissionError: not allowed" in record.traceback
    assert ran == []


async def test_an_executor_class_overrides_error_handling_and_the_retry_strategy(app: QueueTasks) -> None:
    attempts: list[int] = []

    class RetryFastOnKeyError(TaskExecutor):
        async def on_error(self, worker: Any, call: Any, error: BaseException) -> Decision | None:
            if isinstance(error, KeyError) and call.attempt < 3:
                return Decision(action="retry", delay=0)
            if isinstance(error, LookupError):
                return Decision(action="succeed", result="fallback")
            return None

    @app.task(executor=RetryFastOnKeyError)
    async def flaky() -> str:
        attempts.append(len(attempts) + 1)
        raise KeyError("missing")

    @app.task(executor=RetryFastOnKeyError)
    async def broken() -> None:
        raise ValueError("plain failure")

    async with running_worker(app):
        record = await flaky.add_task(timeout=WAIT)
        failed = await broken.add_task(timeout=WAIT)
    assert attempts == [1, 2, 3]
    assert (record.status, record.returning) == ("success", "fallback")
    assert failed.status == "error" and "plain failure" in failed.traceback


async def test_an_executor_class_overrides_a_run_step(app: QueueTasks) -> None:
    class Traced(TaskExecutor):
        async def run_function(self, worker: Any, call: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return ["traced", await super().run_function(worker, call, args, kwargs)]

    @app.task(executor=Traced)
    def work(x: int) -> int:
        return x * 3

    async with running_worker(app):
        record = await work.add_task(2, timeout=WAIT)
    assert record.returning == ["traced", 6]


async def test_bad_middlewares_and_executors_are_refused_and_the_executor_plugin_owns_them() -> None:
    app = QueueTasks(name="mw-bad", broker_url="memory://")
    with pytest.raises(ConfigurationError, match="middlewares_before=.*: use a list of middleware classes"):
        @app.task(middlewares_before=[DoubleFirstArgument(None)])
        async def instance_given() -> None: ...
    with pytest.raises(ConfigurationError, match="executor=.*: use a class with an async execute"):
        @app.task(executor=object())
        async def bad_executor() -> None: ...
    with pytest.raises(ValueError, match="position must be 'before' or 'after'"):
        app.add_middleware(Stringify, position="around")
    with pytest.raises(TypeError, match="expects a middleware class"):
        app.add_middleware(Stringify(None))

    blocked = QueueTasks(name="no-executor", broker_url="memory://", disable_plugins=["executor"])
    with pytest.raises(UnknownOptionError, match="option 'middlewares_after' belongs to plugin 'executor', which is disabled"):
        @blocked.task(middlewares_after=[Stringify])
        async def job() -> None: ...
