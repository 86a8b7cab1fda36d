"""running_worker: serve an app in this process for the length of a block (async or sync app)."""

from __future__ import annotations

import threading
from typing import Any

import anyio

from qtasks._state import kernel_of

__all__ = ["running_worker", "STOP_TIMEOUT"]

STOP_TIMEOUT = 30.0  # seconds ``with running_worker(sync_app)`` waits for the worker thread on exit


class running_worker:  # noqa: N801 - used as a context manager, like a function
    """Serve an app in the background for the length of a block, then stop it (it drains first).

    ``async with running_worker(app):`` serves an async app (``qtasks.asyncio.QueueTasks``) in
    the current task group; ``with running_worker(app):`` serves a sync app
    (``qtasks.QueueTasks``) on its event loop thread. Both give the ``Worker``.

    Args:
        app: The app to serve.
        concurrency: The worker's concurrency (default: the app's config).
    """

    def __init__(self, app: Any, concurrency: int | None = None) -> None:
        self.app = app
        self.concurrency = concurrency
        self._group: Any = None
        self._thread: threading.Thread | None = None

    async def __aenter__(self) -> Any:
        if kernel_of(self.app) is not self.app:
            raise TypeError(f"running_worker: {self.app!r} is a sync app: serve it with `with running_worker(app):`")
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self.app.serve, self.concurrency, False)
        while self.app.worker is None:  # serve() sets it synchronously on its first step
            await anyio.sleep(0)
        return self.app.worker

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        await self.app.stop()
        return await self._group.__aexit__(*exc_info)

    def __enter__(self) -> Any:
        kernel = kernel_of(self.app)
        if kernel is self.app:
            raise TypeError(f"running_worker: {self.app!r} is an async app: serve it with `async with running_worker(app):`")
        self._thread = threading.Thread(target=self.app.run_forever, kwargs={"concurrency": self.concurrency},
                                        name=f"qtasks-worker-{kernel.name}", daemon=True)
        self._thread.start()
        kernel.loop_thread().call(self._worker_started, kernel)
        return kernel.worker

    async def _worker_started(self, kernel: Any) -> None:
        """Return once the worker thread's ``serve`` has made the worker (on the app's loop)."""
        while kernel.worker is None:
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError(f"running_worker: the worker of app {kernel.name!r} stopped before it started (see the log)")
            await anyio.sleep(0.001)

    def __exit__(self, *exc_info: Any) -> None:
        self.app.stop()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
