"""Task context: ``echo=True`` passes the running task its handle, whose ``self.ctx`` reaches the app."""

from __future__ import annotations

import logging
import threading
from typing import Any
from uuid import UUID

import anyio

from qtasks.errors import TaskCancelError, TaskPluginTriggerError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.handles import AsyncTask, SyncTask, TaskContext
from qtasks.kernel.model import ExecutionCall, Task, as_uuid

__all__ = ["RunningContext", "AsyncContext", "SyncContext", "echo_handle", "qtasks_register_task_options"]

COMPONENT_NAMES = ("broker", "storage", "global_config", "serializer", "config", "worker")


class RunningContext(TaskContext):
    """What a running task reaches through ``self.ctx``: its ids, the app, its components.

    Args:
        worker: The worker running the task.
        call: The run.
        cancel_event: Set when someone asked this run to stop (``app.cancel``); None when the
            ``cancel`` plugin is disabled.
    """

    def __init__(self, worker: Any, call: ExecutionCall, cancel_event: Any = None) -> None:
        definition = call.definition
        super().__init__(worker.app, definition.name, UUID(call.uuid), definition.generate_handler)
        self.worker = worker
        self.attempt = call.attempt
        self._cancel_event = cancel_event
        self._metadata: Task | None = call.record

    @property
    def cancelled(self) -> bool:
        """True once ``app.cancel`` asked this running task to stop; end it with ``self.ctx.cancel()``."""
        return self._cancel_event is not None and self._cancel_event.is_set()

    def get_logger(self, name: str | None = None) -> logging.Logger:
        """Return the logger ``qtasks.<app>.<name or task name>``."""
        return logging.getLogger(f"qtasks.{self.app.name}.{name or self.task_name}")

    def get_component(self, name: str) -> Any:
        """Return the app's ``broker``, ``storage``, ``global_config``, ``serializer``, ``config`` or the ``worker``."""
        if name not in COMPONENT_NAMES:
            raise ValueError(f"unknown component {name!r}: use one of {', '.join(COMPONENT_NAMES)}")
        return self.worker if name == "worker" else getattr(self.app, name)

    def cancel(self, reason: str = "") -> None:
        """End this task now with status ``cancel`` and ``reason`` (raises ``TaskCancelError``)."""
        raise TaskCancelError(reason or f"{self.task_name}.cancel")

    def plugin_error(self, **kwargs: Any) -> None:
        """Raise ``TaskPluginTriggerError(**kwargs)`` (kept on ``.kwargs``) for a plugin to handle."""
        raise TaskPluginTriggerError(**kwargs)

    def _check_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelError(getattr(self._cancel_event, "reason", "") or f"{self.task_name}.cancel")


class AsyncContext(RunningContext):
    """``self.ctx`` of an ``async def`` (or async generator) echo task."""

    async def get_metadata(self, cache: bool = True) -> Task | None:
        """Return this task's record: the ``process`` record of this run, or with ``cache=False``
        what the storage holds now."""
        if self._metadata is None or not cache:
            self._metadata = await self.app.get(self.task_uuid)  # type: ignore[arg-type]
        return self._metadata

    async def get_task(self, uuid: UUID | str) -> Task | None:
        """Return another task's stored record, or None."""
        return await self.app.get(as_uuid(uuid))

    async def sleep(self, seconds: float) -> None:
        """Sleep; a cancel request cancels the task during the sleep like anywhere else."""
        await anyio.sleep(seconds)


class SyncContext(RunningContext):
    """``self.ctx`` of a sync (or sync generator) echo task, which runs in a worker thread."""

    def _blocking(self, func: Any, *args: Any) -> Any:
        return anyio.from_thread.run(func, *args)

    def get_metadata(self, cache: bool = True) -> Task | None:
        """Return this task's record: the ``process`` record of this run, or with ``cache=False``
        what the storage holds now."""
        if self._metadata is None or not cache:
            self._metadata = self._blocking(self.app.get, self.task_uuid)
        return self._metadata

    def get_task(self, uuid: UUID | str) -> Task | None:
        """Return another task's stored record, or None."""
        return self._blocking(self.app.get, as_uuid(uuid))

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early with ``TaskCancelError`` when the task is cancelled meanwhile."""
        event = self._cancel_event if self._cancel_event is not None else threading.Event()
        if event.wait(seconds) or self.cancelled:
            self._check_cancelled()


def echo_handle(worker: Any, call: ExecutionCall) -> AsyncTask | SyncTask:
    """Return the handle an echo task gets first: ``AsyncTask`` with an :class:`AsyncContext` for
    ``async def`` and async generators, ``SyncTask`` with a :class:`SyncContext` otherwise."""
    from qtasks.builtin_plugins.cancel import cancel_event_of

    definition = call.definition
    event = cancel_event_of(worker, call.uuid)
    if definition.awaiting or definition.generating == "async":
        handle: AsyncTask | SyncTask = AsyncTask(definition, worker.app, task_uuid=UUID(call.uuid))
        handle.ctx = AsyncContext(worker, call, event)
    else:
        handle = SyncTask(definition, worker.app, task_uuid=UUID(call.uuid))
        handle.ctx = SyncContext(worker, call, event)
    return handle


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare ``echo``."""
    register("echo", False, "Pass the task handle (self, with self.ctx) as the first argument.")
