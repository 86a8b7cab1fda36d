"""AsyncTestCase: a test case over an async app; its worker runs as a task of the test's asyncio loop."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import anyio

from qtasks.errors import ConfigurationError
from qtasks.kernel.model import Task
from qtasks.testing.eager_mode import eager
from qtasks.tests.base import BaseTestCase

__all__ = ["AsyncTestCase"]


class AsyncTestCase(BaseTestCase):
    """A test case over an async app (``qtasks.asyncio.QueueTasks``).

    ``case.settings(TestConfig.full())``, then ``await case.start()`` (a worker serves the app
    on the running asyncio loop), ``await case.add_task(...)``, ``await case.stop()``. Also
    ``async with case:``. See docs/testing.md for what each :class:`TestConfig` runs.

    Args:
        app: The async app under test.
        name: A name for the case (default: the app's).
    """

    def __init__(self, app: Any, name: str | None = None) -> None:
        super().__init__(app, name)
        if self._kernel is not app:
            raise TypeError(f"AsyncTestCase: {app!r} is a sync app: use qtasks.tests.SyncTestCase")
        self._serving: asyncio.Task[None] | None = None

    async def start(self, loop: Any = None, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """Start the app's components and, when the config keeps the worker and the broker, a
        worker with ``num_workers`` concurrent tasks as a task of the running asyncio loop.
        ``loop``, ``starter`` and ``reset_config`` are accepted for compatibility."""
        await self._kernel.start()
        if not self._serves() or self._serving is not None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "AsyncTestCase.start() runs the worker as an asyncio task, and no asyncio loop runs here (trio?): "
                "use `async with qtasks.testing.running_worker(app):` instead"
            ) from None
        self._serving = running.create_task(self._kernel.serve(num_workers, False))
        while self._kernel.worker is None:
            if self._serving.done():
                self._serving.result()  # serve() failed: raise its error
            await anyio.sleep(0)

    def start_in_background(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> asyncio.Task[None]:
        """Schedule :meth:`start` on the running asyncio loop and return its task (await it to
        know the worker has started)."""
        return asyncio.get_running_loop().create_task(self.start(num_workers=num_workers))

    async def stop(self) -> None:
        """Stop the worker (it drains first) and the components; give the app back its own
        components and plugins."""
        if self._serving is not None:
            serving, self._serving = self._serving, None
            await self._kernel.stop()
            await serving
        await self._kernel.close()
        self._restore()

    async def add_task(self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None, **kwargs: Any) -> Task | None:
        """Enqueue a task through the broker; with the worker and no broker, run it at once
        (eager mode) and return its final record.

        Raises:
            ConfigurationError: the config runs neither the worker nor the broker.
        """
        if self._route() == "broker":
            return await self._kernel.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        with eager(self._kernel):
            record = await self._kernel.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        return await self._kernel.get(record.uuid) if timeout is None and record is not None else record

    async def get(self, uuid: UUID | str) -> Task | None:
        """The task's stored record, or None."""
        return await self._kernel.get(uuid)

    async def __aenter__(self) -> AsyncTestCase:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()
