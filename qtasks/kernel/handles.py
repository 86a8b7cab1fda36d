"""Task handles returned by ``@app.task``: ``AsyncTask`` / ``SyncTask``, deferred calls and ``ctx``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs

from qtasks import _state
from qtasks.errors import TaskCancelError
from qtasks.kernel.model import Task, TaskDefinition
from qtasks.kernel.portal import run_blocking

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["TaskContext", "AsyncTask", "SyncTask", "AsyncTaskCls", "SyncTaskCls"]


class TaskContext:
    """``self.ctx`` of an echo task (and of any handle): what the running task may reach."""

    def __init__(self, app: AsyncQueueTasks | None, task_name: str, task_uuid: UUID | None = None, generate_handler: Any = None) -> None:
        self._app = app
        self.task_name = task_name
        self.task_uuid = task_uuid
        self.generate_handler = generate_handler

    @property
    def app(self) -> AsyncQueueTasks:
        """The app this task belongs to."""
        if self._app is None:
            raise RuntimeError(f"task {self.task_name!r} is not bound to an app")
        return self._app

    def get_logger(self, name: str | None = None) -> logging.Logger:
        """Return a logger named after the app and ``name`` (default: the task name)."""
        return logging.getLogger(f"qtasks.{self.app.name}.{name or self.task_name}")

    def get_config(self) -> Any:
        """Return the app's ``QueueConfig``."""
        return self.app.config

    def get_component(self, name: str) -> Any:
        """Return ``broker``, ``storage``, ``global_config``, ``serializer`` or ``config``."""
        if name not in {"broker", "storage", "global_config", "serializer", "config"}:
            raise ValueError(f"unknown component {name!r}: use broker, storage, global_config, serializer or config")
        return getattr(self.app, name)

    async def get_metadata(self, cache: bool = True) -> Task | None:
        """Return this task's stored record."""
        if self.task_uuid is None:
            raise RuntimeError("get_metadata() needs a running task (echo=True)")
        return await self.app.get(self.task_uuid)

    async def get_task(self, uuid: UUID | str) -> Task | None:
        """Return another task's record."""
        return await self.app.get(uuid)

    def cancel(self, reason: str = "") -> None:
        """End the running task with status ``cancel``."""
        raise TaskCancelError(reason or f"{self.task_name}.cancel")


class _TaskHandle:
    """The shared part of ``AsyncTask`` and ``SyncTask``: the definition's options as attributes."""

    def __init__(self, definition: TaskDefinition, app: AsyncQueueTasks | None, task_uuid: UUID | None = None) -> None:
        self._definition = definition
        self._app = app
        self.ctx = TaskContext(app, definition.name, task_uuid, definition.generate_handler)

    def __getattr__(self, name: str) -> Any:
        if name == "task_name":
            return self._definition.name
        if name.startswith("_"):
            raise AttributeError(name)
        return self._definition.option(name)

    @property
    def definition(self) -> TaskDefinition:
        """The registered definition."""
        return self._definition

    def _kernel(self) -> AsyncQueueTasks:
        kernel = _state.kernel_of(self._app)
        if kernel is None:
            raise ImportError("Unable to get app! Create a QueueTasks before using this task.")
        return kernel

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._definition.name!r}>"


class AsyncTask(_TaskHandle):
    """Handle of a task in an async app (and of coroutine echo tasks)."""

    async def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None, task_name: str | None = None, **kwargs: Any) -> Task | None:
        """Enqueue this task (or ``task_name``); with ``timeout``, wait for and return its final record."""
        if priority is None and task_name is None:
            priority = self._definition.priority
        return await self._kernel().add_task(task_name or self._definition.name, *args, priority=priority, timeout=timeout, **kwargs)

    async def add_tasks(self, calls: Iterable[Any], *, priority: int | None = None, **options: Any) -> list[Task]:
        """Enqueue many calls of this task in one step; see ``QueueTasks.add_tasks``."""
        chosen = self._definition.priority if priority is None else priority
        return await self._kernel().add_tasks(self._definition.name, calls, priority=chosen, **options)

    def __call__(self, *args: Any, priority: int | None = None, timeout: float | None = None, task_name: str | None = None, **kwargs: Any) -> AsyncTaskCls:
        """Build a deferred call; nothing runs until its ``add_task()``."""
        return AsyncTaskCls(task_name=task_name, priority=priority, timeout=timeout, args=args, kwargs=kwargs, task=self)


class SyncTask(_TaskHandle):
    """Handle of a task in a sync app (and of sync or generator echo tasks)."""

    def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None, task_name: str | None = None, **kwargs: Any) -> Task | None:
        """Enqueue this task (or ``task_name``) and block; with ``timeout``, return the final record."""
        if priority is None and task_name is None:
            priority = self._definition.priority
        kernel = self._kernel()
        return run_blocking(kernel, kernel.add_task, task_name or self._definition.name, *args, priority=priority, timeout=timeout, **kwargs)

    def add_tasks(self, calls: Iterable[Any], *, priority: int | None = None, **options: Any) -> list[Task]:
        """Enqueue many calls of this task in one step and block; see ``QueueTasks.add_tasks``."""
        chosen = self._definition.priority if priority is None else priority
        kernel = self._kernel()
        return run_blocking(kernel, kernel.add_tasks, self._definition.name, list(calls), priority=chosen, **options)

    def __call__(self, *args: Any, priority: int | None = None, timeout: float | None = None, task_name: str | None = None, **kwargs: Any) -> SyncTaskCls:
        """Build a deferred call; nothing runs until its ``add_task()``."""
        return SyncTaskCls(task_name=task_name, priority=priority, timeout=timeout, args=args, kwargs=kwargs, task=self)


@attrs.define(kw_only=True)
class AsyncTaskCls:
    """A deferred call of an async task: ``await handle(1, 2).add_task()``."""

    task: AsyncTask
    task_name: str | None = None
    priority: int | None = None
    timeout: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)

    async def add_task(self) -> Task | None:
        """Enqueue the call (and wait for it when a timeout was given)."""
        return await self.task.add_task(*self.args, task_name=self.task_name, priority=self.priority, timeout=self.timeout, **self.kwargs)


@attrs.define(kw_only=True)
class SyncTaskCls:
    """A deferred call of a sync task: ``handle(1, 2).add_task()``."""

    task: SyncTask
    task_name: str | None = None
    priority: int | None = None
    timeout: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)

    def add_task(self) -> Task | None:
        """Enqueue the call (and wait for it when a timeout was given)."""
        return self.task.add_task(*self.args, task_name=self.task_name, priority=self.priority, timeout=self.timeout, **self.kwargs)
