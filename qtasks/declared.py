"""Tasks declared away from an app (routers, ``shared_task``): the declaration and its handles."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import anyio.to_thread
import attrs

from qtasks import _state
from qtasks.errors import ConfigurationError
from qtasks.kernel.handles import AsyncTask, SyncTask, TaskContext
from qtasks.kernel.model import Task, TaskDefinition
from qtasks.kernel.portal import run_blocking

__all__ = ["TaskDeclaration", "DeclaredTask", "AsyncDeclaredTask", "SyncDeclaredTask", "origin_of", "call_on_app_loop"]

AppSource = Callable[[], Iterable[Any]]


def origin_of(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a task function, to name it in errors."""
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


@attrs.frozen
class TaskDeclaration:
    """A task function and its options, waiting to be defined in apps.

    Each app that takes it (``include_router``, or every app for a shared task) makes its own
    ``TaskDefinition`` from it, with that app's options checked and its default priority.
    """

    name: str
    func: Callable[..., Any]
    options: dict[str, Any] = attrs.field(factory=dict)

    @property
    def origin(self) -> str:
        """Where the function comes from: ``module.qualname``."""
        return origin_of(self.func)

    def define(self, app: Any) -> TaskDefinition:
        """Register this task in ``app`` (a sync or async app): options are checked there, a
        missing ``priority`` becomes the app's ``task_default_priority``."""
        kernel = _state.kernel_of(app)
        return kernel.registry.define(self.func, self.name, kernel.config.task_default_priority, dict(self.options), kernel.validate_task)

    def defined_in(self, app: Any) -> TaskDefinition | None:
        """This task's definition in ``app``, or None when the app has no such task from it."""
        definition = _state.kernel_of(app).registry.tasks.get(self.name)
        return definition if definition is not None and definition.func is self.func else None


async def call_on_app_loop(app: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Await ``kernel.<method>(...)`` where the kernel's components live.

    An async app runs on the caller's loop. A sync app's kernel lives on its own loop thread: from
    any other loop the call goes there (this loop waits in a worker thread, without blocking).
    """
    kernel = _state.kernel_of(app)
    func = getattr(kernel, method)
    if app is kernel:
        return await func(*args, **kwargs)
    loop = kernel.loop_thread()
    if threading.current_thread() is loop.thread:
        return await func(*args, **kwargs)
    return await anyio.to_thread.run_sync(partial(loop.call, func, *args, **kwargs))


class DeclaredTask:
    """The part shared by the handles of declared tasks: which app they enqueue through.

    Args:
        declaration: The declared task.
        apps: Returns the candidate apps, best first; the first one that has this task is used.
        missing: The end of the error raised when none has it: what to do about it.
    """

    def __init__(self, declaration: TaskDeclaration, apps: AppSource, missing: str) -> None:
        self._declaration = declaration
        self._apps = apps
        self._missing = missing

    def _locate(self) -> tuple[Any, TaskDefinition]:
        for app in self._apps():
            definition = self._declaration.defined_in(app)
            if definition is not None:
                return app, definition
        raise ConfigurationError(f"task {self._declaration.name!r} ({self._declaration.origin}) {self._missing}")

    @property
    def task_name(self) -> str:
        """The task's name."""
        return self._declaration.name

    @property
    def declaration(self) -> TaskDeclaration:
        """The declared function and options."""
        return self._declaration

    @property
    def _definition(self) -> TaskDefinition:
        return self._locate()[1]

    @property
    def _app(self) -> Any:
        return self._locate()[0]

    def _kernel(self) -> Any:
        return _state.kernel_of(self._app)

    @property
    def ctx(self) -> TaskContext:
        """A context on the app this handle enqueues through (no app yet: ``ctx.app`` raises)."""
        try:
            app, definition = self._locate()
        except ConfigurationError:
            return TaskContext(None, self._declaration.name, None, self._declaration.options.get("generate_handler"))
        return TaskContext(_state.kernel_of(app), definition.name, None, definition.generate_handler)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            definition = self._definition
        except ConfigurationError:  # no app yet: what was declared
            return self._declaration.options.get(name)
        return definition.option(name)

    def for_app(self, app: Any) -> Any:
        """A handle of this task that always enqueues through ``app`` (which must have the task)."""
        name = getattr(app, "name", "?")
        bound = type(self)(self._declaration, lambda: (app,), f"is not registered in app {name!r}: include its router or declare it there")
        bound._locate()
        return bound

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._declaration.name!r}>"


class AsyncDeclaredTask(DeclaredTask, AsyncTask):
    """An ``AsyncTask`` whose app is found when it is used (see :class:`DeclaredTask`)."""

    async def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None, task_name: str | None = None, **kwargs: Any) -> Task | None:
        """Enqueue this task (or ``task_name``) in its app; with ``timeout``, wait for its final record."""
        app, definition = self._locate()
        if priority is None and task_name is None:
            priority = definition.priority
        return await call_on_app_loop(app, "add_task", task_name or definition.name, *args, priority=priority, timeout=timeout, **kwargs)

    async def add_tasks(self, calls: Iterable[Any], *, priority: int | None = None, **options: Any) -> list[Task]:
        """Enqueue many calls of this task in one step; see ``QueueTasks.add_tasks``."""
        app, definition = self._locate()
        chosen = definition.priority if priority is None else priority
        return await call_on_app_loop(app, "add_tasks", definition.name, list(calls), priority=chosen, **options)


class SyncDeclaredTask(DeclaredTask, SyncTask):
    """A ``SyncTask`` whose app is found when it is used (see :class:`DeclaredTask`)."""

    def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None, task_name: str | None = None, **kwargs: Any) -> Task | None:
        """Enqueue this task (or ``task_name``) in its app and block; with ``timeout``, return the final record."""
        app, definition = self._locate()
        if priority is None and task_name is None:
            priority = definition.priority
        kernel = _state.kernel_of(app)
        return run_blocking(kernel, kernel.add_task, task_name or definition.name, *args, priority=priority, timeout=timeout, **kwargs)

    def add_tasks(self, calls: Iterable[Any], *, priority: int | None = None, **options: Any) -> list[Task]:
        """Enqueue many calls of this task in one step and block; see ``QueueTasks.add_tasks``."""
        app, definition = self._locate()
        chosen = definition.priority if priority is None else priority
        kernel = _state.kernel_of(app)
        return run_blocking(kernel, kernel.add_tasks, definition.name, list(calls), priority=chosen, **options)
