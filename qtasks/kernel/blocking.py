"""The sync application (``qtasks.QueueTasks``): the async kernel behind a blocking facade."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from qtasks import _state
from qtasks.kernel.app import AsyncQueueTasks, task_decorator
from qtasks.kernel.handles import SyncTask
from qtasks.kernel.model import Task
from qtasks.kernel.portal import run_blocking

__all__ = ["QueueTasks"]


class QueueTasks:
    """The QTasks application, sync API. Takes the same arguments as the async app.

    Every call runs on the app's own event loop thread; attributes not defined here (``name``,
    ``config``, ``tasks``, ``broker``, ``add_plugin``, ...) are the async app's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._kernel = AsyncQueueTasks(*args, **kwargs)
        _state.app_main = self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._kernel, name)

    def __repr__(self) -> str:
        return f"<QueueTasks {self._kernel.name!r} sync>"

    def task(self, name: Any = None, **options: Any) -> Any:
        """Register a task: ``@app.task`` or ``@app.task(...)``; returns a ``SyncTask`` handle."""
        return task_decorator(self._kernel, lambda d: SyncTask(d, self._kernel), name, options)

    def include_router(self, router: Any) -> None:
        """Register a router's tasks; its handles then enqueue through this sync app (an
        ``AsyncRouter``'s awaited handles reach this app's loop thread). See ``docs/routers.md``."""
        router.include_into(self)

    def include_routers(self, *routers: Any) -> None:
        """``include_router`` for each router, in order."""
        for router in routers:
            self.include_router(router)

    def add_task(self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None, **kwargs: Any) -> Task | None:
        """Enqueue a task; with ``timeout``, block until it ends (None when the time runs out)."""
        return run_blocking(self._kernel, self._kernel.add_task, task_name, *args, priority=priority, timeout=timeout, **kwargs)

    def add_tasks(self, task_name: str, calls: Iterable[Any], **options: Any) -> list[Task]:
        """Enqueue many calls of one task in one step; see ``qtasks.asyncio.QueueTasks.add_tasks``."""
        return run_blocking(self._kernel, self._kernel.add_tasks, task_name, list(calls), **options)

    def cancel(self, uuid: UUID | str, reason: str = "") -> bool:
        """Cancel a task that is still queued; see ``qtasks.asyncio.QueueTasks.cancel``."""
        return run_blocking(self._kernel, self._kernel.cancel, uuid, reason)

    def get(self, uuid: UUID | str) -> Task | None:
        """Return a task's stored record, or None."""
        return run_blocking(self._kernel, self._kernel.get, uuid)

    def wait_result(self, uuid: UUID | str, timeout: float = 100.0) -> Task | None:
        """Block until a task ends; return its record, or None after ``timeout`` seconds."""
        return run_blocking(self._kernel, self._kernel.wait_result, uuid, timeout)

    def join(self, timeout: float | None = None) -> None:
        """Block until the queue is drained; see ``qtasks.asyncio.QueueTasks.join``."""
        run_blocking(self._kernel, self._kernel.join, timeout)

    def ping(self, server: bool = True) -> bool:
        """See ``qtasks.asyncio.QueueTasks.ping``."""
        return run_blocking(self._kernel, self._kernel.ping, server)

    def flush_all(self) -> None:
        """Drop every queued task and stored record."""
        run_blocking(self._kernel, self._kernel.flush_all)

    def stop(self) -> None:
        """Stop the worker (it drains first) or the components."""
        run_blocking(self._kernel, self._kernel.stop)

    def close(self) -> None:
        """Stop the components and the app's loop thread."""
        kernel = self._kernel
        if kernel._loop_thread is not None:
            kernel._loop_thread.call(kernel.close)
            kernel._loop_thread.close()
            kernel._loop_thread = None

    def run_forever(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True, concurrency: int | None = None) -> None:
        """Run a worker until SIGINT/SIGTERM, then drain and return."""
        kernel = self._kernel
        loop = kernel.loop_thread()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: loop.call_soon(kernel.request_stop))
        try:
            loop.call(kernel.serve, concurrency, handle_signals=False)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
