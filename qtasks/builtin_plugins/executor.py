"""The default executor: async functions on the loop, sync ones in threads, generators step by step."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import anyio

from qtasks.hookspecs import hookimpl
from qtasks.kernel.handles import AsyncTask, SyncTask
from qtasks.kernel.model import ExecutionCall, TaskDefinition

__all__ = ["TaskExecutor", "qtasks_make_executor", "qtasks_register_task_options"]

_DONE = object()


def _step(generator: Any, value: Any) -> Any:
    try:
        return generator.send(value)
    except StopIteration:
        return _DONE


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class TaskExecutor:
    """Runs one task definition. Subclass it and pass ``executor=MyExecutor`` to change a step.

    Steps: :meth:`arguments` (echo injection), then one of :meth:`run_coroutine`,
    :meth:`run_function`, :meth:`run_async_generator`, :meth:`run_sync_generator`, each under
    ``max_time`` when set; :meth:`handle_value` processes each generator value.
    """

    def __init__(self, definition: TaskDefinition) -> None:
        self.definition = definition

    async def execute(self, worker: Any, call: ExecutionCall) -> Any:
        """Run the call and return the result (a list of handled values for generators)."""
        args, kwargs = self.arguments(worker, call)
        definition = self.definition
        if definition.generating == "async":
            runner = partial(self.run_async_generator, worker, call)
        elif definition.generating == "sync":
            runner = partial(self.run_sync_generator, worker, call)
        elif definition.awaiting:
            runner = partial(self.run_coroutine, worker, call)
        else:
            runner = partial(self.run_function, worker, call)
        if definition.max_time is None:
            return await runner(args, kwargs)
        try:
            with anyio.fail_after(definition.max_time):
                return await runner(args, kwargs)
        except TimeoutError:
            raise TimeoutError(f"task {definition.name!r} ran past max_time={definition.max_time}s") from None

    def arguments(self, worker: Any, call: ExecutionCall) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Return the positional and keyword arguments; with ``echo`` the task handle goes first."""
        args, kwargs = tuple(call.args), dict(call.kwargs)
        definition = self.definition
        if definition.echo:
            asynchronous = definition.awaiting or definition.generating == "async"
            handle_cls = AsyncTask if asynchronous else SyncTask
            args = (handle_cls(definition, worker.app, task_uuid=call.message.uuid), *args)
        return args, kwargs

    async def run_coroutine(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Await an ``async def`` task on the event loop."""
        return await self.definition.func(*args, **kwargs)

    async def run_function(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a plain function in a worker thread (the loop stays free)."""
        abandon = self.definition.max_time is not None
        return await anyio.to_thread.run_sync(partial(self.definition.func, *args, **kwargs), limiter=worker.threads, abandon_on_cancel=abandon)

    async def handle_value(self, worker: Any, call: ExecutionCall, value: Any) -> Any:
        """Pass a yielded value through ``generate_handler`` and ``qtasks_task_yielded``."""
        handler = self.definition.generate_handler
        if handler is not None:
            value = await _maybe_await(handler(value))
        return await worker.app.dispatcher.pipe("qtasks_task_yielded", worker=worker, call=call, value=value)

    async def run_async_generator(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Drive an async generator; each handled value is collected and sent back into it."""
        generator = self.definition.func(*args, **kwargs)
        results: list[Any] = []
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

    async def run_sync_generator(self, worker: Any, call: ExecutionCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Drive a sync generator one step per thread call; values are handled on the loop."""
        generator = self.definition.func(*args, **kwargs)
        results: list[Any] = []
        sent: Any = None
        abandon = self.definition.max_time is not None
        try:
            while True:
                value = await anyio.to_thread.run_sync(_step, generator, sent, limiter=worker.threads, abandon_on_cancel=abandon)
                if value is _DONE:
                    return results
                sent = await self.handle_value(worker, call, value)
                results.append(sent)
        finally:
            try:
                generator.close()
            except ValueError:  # a step abandoned at max_time still runs in its thread
                pass


def _positive_seconds(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("use a number of seconds > 0")


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare the execution options."""
    register("echo", False, "Pass the task handle (with .ctx) as the first argument.")
    register("max_time", None, "Seconds after which the run fails with TimeoutError.", _positive_seconds)
    register("generate_handler", None, "Called with each value a generator task yields.")
    register("executor", None, "A TaskExecutor subclass for this task.")
    register("decode", None, "Accepted for compatibility; results are stored by the storage's format.")
    register("middlewares_before", None, "Accepted for compatibility (see the executor docs).")
    register("middlewares_after", None, "Accepted for compatibility (see the executor docs).")


@hookimpl(trylast=True)
def qtasks_make_executor(app: Any, task: TaskDefinition) -> TaskExecutor:
    """Provide the task's ``executor=`` class, or :class:`TaskExecutor`."""
    executor_cls = task.executor or TaskExecutor
    if not (isinstance(executor_cls, type) and hasattr(executor_cls, "execute")):
        raise TypeError(f"task {task.name!r}: executor must be a class with an async execute(worker, call), got {executor_cls!r}")
    return executor_cls(task)
