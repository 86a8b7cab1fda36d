"""SyncTestCase: a test case over a sync app; its worker runs on the app's event loop thread."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from qtasks.kernel.model import Task
from qtasks.kernel.portal import run_blocking
from qtasks.testing.eager_mode import eager
from qtasks.testing.workers import running_worker
from qtasks.tests.base import BaseTestCase

__all__ = ["SyncTestCase"]


class SyncTestCase(BaseTestCase):
    """A test case over a sync app (``qtasks.QueueTasks``).

    ``case.settings(TestConfig.full())``, then ``case.start()`` (it returns once a worker
    serves the app in the background), ``case.add_task(...)``, ``case.stop()``. Also
    ``with case:``. See docs/testing.md for what each :class:`TestConfig` runs.

    Args:
        app: The sync app under test.
        name: A name for the case (default: the app's).
    """

    def __init__(self, app: Any, name: str | None = None) -> None:
        super().__init__(app, name)
        if self._kernel is app:
            raise TypeError(f"SyncTestCase: {app!r} is an async app: use qtasks.tests.AsyncTestCase")
        self._worker: running_worker | None = None

    def start(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """Start the app's components and, when the config keeps the worker and the broker, a
        worker with ``num_workers`` concurrent tasks; returns once it serves (the original
        blocked in ``run_forever``). ``starter`` and ``reset_config`` are accepted for compatibility."""
        run_blocking(self._kernel, self._kernel.start)
        if self._serves() and self._worker is None:
            self._worker = running_worker(self.app, num_workers)
            self._worker.__enter__()

    def start_in_background(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """The same as :meth:`start`, which does not block."""
        self.start(starter, num_workers, reset_config)

    def stop(self) -> None:
        """Stop the worker (it drains first) and the components; give the app back its own
        components and plugins."""
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.__exit__(None, None, None)
        run_blocking(self._kernel, self._kernel.close)
        self._restore()

    def add_task(self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None, **kwargs: Any) -> Task | None:
        """Enqueue a task through the broker; with the worker and no broker, run it at once
        (eager mode) and return its final record.

        Raises:
            ConfigurationError: the config runs neither the worker nor the broker.
        """
        if self._route() == "broker":
            return self.app.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        with eager(self.app):
            record = self.app.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        return self.app.get(record.uuid) if timeout is None and record is not None else record

    def get(self, uuid: UUID | str) -> Task | None:
        """The task's stored record, or None."""
        return self.app.get(uuid)

    def __enter__(self) -> SyncTestCase:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
