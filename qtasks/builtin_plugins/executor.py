"""The default executor: middlewares, then async functions on the loop, sync ones in threads, generators step by step."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import anyio

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Decision, ExecutionCall, TaskDefinition

__all__ = ["TaskExecutor", "RunState", "YieldedValues", "qtasks_make_executor", "qtasks_register_task_options", "qtasks_task_failed"]

_DONE = object()
_NO_MIDDLEWARES: dict[str, list[Any]] = {"before": [], "after": []}


class YieldedValues(list):  # type: ignore[type-arg]
    """The result of a generator task: the handled values; ``returned`` holds its ``return`` value."""

    returned: Any = None


def _step(generator: Any, value: Any) -> Any:
    delegate = generator.gi_yieldfrom
    if delegate is not None and not hasattr(delegate, "send"):
        value = None  # ``yield from a_list``: a plain iterator cannot receive values
    try:
        return generator.send(value)
    except StopIteration as stop:
        return (_DONE, stop.value)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class RunState:
    """One run as a middleware sees it (``self.task_executor``): change ``args``/``kwargs`` before
    the function runs, or ``result`` after it."""

    def __init__(self, executor: TaskExecutor, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.executor = executor
        self.worker = worker
        self.call = call
        self.definition = call.definition
        self.args = args
        self.kwargs = kwargs
        self.result: Any = None

    @property
    def app(self) -> Any:
        """The app the task belongs to."""
        return self.worker.app


class TaskExecutor:
    """Runs one task definition. Subclass it and pass ``@app.task(executor=MyExecutor)`` to change a step.

    The pipeline (:meth:`execute`): :meth:`arguments` (the echo handle goes first), the
    before-middlewares (:meth:`run_middlewares`), one of :meth:`run_coroutine`,
    :meth:`run_function`, :meth:`run_async_generator`, :meth:`run_sync_generator` (each
    generator value through :meth:`handle_value`), then the after-middlewares. Error handling and
    the retry strategy: :meth:`on_error`, asked first when the run raises.
    """

    def __init__(self, definition: TaskDefinition) -> None:
        self.definition = definition

    async def execute(self, worker: Any, call: ExecutionCall) -> Any:
        """Run the call and return the result (for generators, the handled values)."""
        args, kwargs = self.arguments(worker, call)
        definition = self.definition
        if definition.generating == "async":
            runner = self.run_async_generator
        elif definition.generating == "sync":
            runner = self.run_sync_generator
        elif definition.awaiting:
            runner = self.run_coroutine
        else:
            runner = self.run_function
        app_middlewares = getattr(worker.app, "middlewares", _NO_MIDDLEWARES)
        before = [*app_middlewares["before"], *definition.middlewares_before]
        after = [*definition.middlewares_after, *app_middlewares["after"]]
        if not before and not after:
            return await runner(worker, call, args, kwargs)
        state = RunState(self, worker, call, args, kwargs)
        await self.run_middlewares(state, before)
        state.result = await runner(worker, call, state.args, state.kwargs)
        await self.run_middlewares(state, after)
        return state.result

    def arguments(self, worker: Any, call: ExecutionCall) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Return the positional and keyword arguments; with ``echo`` the task handle goes first."""
        args, kwargs = tuple(call.args), dict(call.kwargs)
        if self.definition.echo:
            from qtasks.builtin_plugins.context import echo_handle

            args = (echo_handle(worker, call), *args)
        return args, kwargs

    async def run_middlewares(self, state: RunState, middlewares: list[Any]) -> None:
        """Call each middleware class with the run state: ``M(state)()``, awaited when async."""
        for middleware in middlewares:
            await _maybe_await(middleware(state)())

    async def on_error(self, worker: Any, call: ExecutionCall, error: BaseException) -> Decision | None:
        """Decide about a failed run before the retry plugin does; None leaves it to the others."""
        return None

    async def run_coroutine(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Await an ``async def`` task on the event loop."""
        return await self.definition.func(*args, **kwargs)

    async def run_function(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a plain function in a worker thread (the loop stays free); with ``max_time`` the
        thread is abandoned at the limit."""
        abandon = self.definition.max_time is not None
        return await anyio.to_thread.run_sync(partial(self.definition.func, *args, **kwargs), limiter=worker.threads, abandon_on_cancel=abandon)

    async def handle_value(self, worker: Any, call: ExecutionCall, value: Any) -> Any:
        """Pass a yielded value through ``generate_handler`` and ``qtasks_task_yielded``."""
        handler = self.definition.generate_handler
        if handler is not None:
            value = await _maybe_await(handler(value))
        return await worker.app.dispatcher.pipe("qtasks_task_yielded", worker=worker, call=call, value=value)

    async def run_async_generator(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> YieldedValues:
        """Drive an async generator; each handled value is collected and sent back into it."""
        generator = self.definition.func(*args, **kwargs)
        results = YieldedValues()
        sent: Any = None
        try:
            while True:
                try:
                    value = await generator.asend(sent)
                except StopAsyncIteration:
                    return results
                sent = await self.handle_value(worker, call, value)
                results.append(sent)
        finally:
            await generator.aclose()

    async def run_sync_generator(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> YieldedValues:
        """Drive a sync generator one step per thread call; values are handled on the loop, and
        the generator's ``return`` value is kept on the result."""
        generator = self.definition.func(*args, **kwargs)
        results = YieldedValues()
        sent: Any = None
        abandon = self.definition.max_time is not None
        try:
            while True:
                value = await anyio.to_thread.run_sync(_step, generator, sent, limiter=worker.threads, abandon_on_cancel=abandon)
                if isinstance(value, tuple) and len(value) == 2 and value[0] is _DONE:
                    results.returned = value[1]
                    return results
                sent = await self.handle_value(worker, call, value)
                results.append(sent)
        finally:
            try:
                generator.close()
            except ValueError:  # a step abandoned at max_time still runs in its thread
                pass


def _middlewares(value: Any) -> None:
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not (isinstance(item, type) and callable(getattr(item, "__call__", None))):
            raise TypeError(f"use a list of middleware classes (subclasses of qtasks.middlewares.TaskMiddleware), got {item!r}")


def _executor_class(value: Any) -> None:
    if not (isinstance(value, type) and callable(getattr(value, "execute", None))):
        raise TypeError(f"use a class with an async execute(worker, call), e.g. a TaskExecutor subclass, got {value!r}")


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare the execution options."""
    register("executor", None, "A TaskExecutor subclass for this task.", _executor_class)
    register("middlewares_before", None, "Middleware classes run before the function (they may change its arguments).", _middlewares)
    register("middlewares_after", None, "Middleware classes run after the function (they may change its result).", _middlewares)
    register("decode", None, "Accepted for compatibility; results are stored by the storage's format.")


@hookimpl(trylast=True)
def qtasks_make_executor(app: Any, task: TaskDefinition) -> TaskExecutor:
    """Provide the task's ``executor=`` class, or :class:`TaskExecutor`."""
    return (task.executor or TaskExecutor)(task)


@hookimpl(tryfirst=True)
async def qtasks_task_failed(worker: Any, call: ExecutionCall, error: BaseException) -> Decision | None:
    """Ask the task's executor (:meth:`TaskExecutor.on_error`) before any other plugin."""
    on_error = getattr(worker.executor_for(call.definition), "on_error", None)
    return await on_error(worker, call, error) if on_error is not None else None

