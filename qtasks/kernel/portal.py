"""The blocking facade's engine: runs the async kernel's coroutines for sync callers."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.from_thread
from anyio.from_thread import BlockingPortal

__all__ = ["LoopThread", "run_blocking"]

T = TypeVar("T")
NoEventLoopError = getattr(anyio, "NoEventLoopError", RuntimeError)  # older anyio raised RuntimeError


class LoopThread:
    """An event loop in a daemon thread, reached through an anyio ``BlockingPortal``.

    A daemon thread, so an app nobody closed never keeps the interpreter from exiting.
    """

    def __init__(self, name: str) -> None:
        self._ready = threading.Event()
        self._portal: BlockingPortal | None = None
        self._thread = threading.Thread(target=self._main, name=f"qtasks-loop-{name}", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        async def serve() -> None:
            self._stop_event = anyio.Event()
            async with BlockingPortal() as portal:
                self._portal = portal
                self._ready.set()
                await self._stop_event.wait()
                await portal.stop(cancel_remaining=True)

        anyio.run(serve)

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread."""
        return self._thread

    def call(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` on the loop and block until it returns."""
        assert self._portal is not None
        return self._portal.call(partial(func, *args, **kwargs))

    def call_soon(self, func: Callable[[], Any]) -> None:
        """Run a plain function on the loop soon; safe from a signal handler."""
        assert self._portal is not None

        async def run() -> None:
            func()

        self._portal.start_task_soon(run)

    def close(self) -> None:
        """Stop the loop and wait for its thread."""
        if self._portal is not None and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._portal.call(self._stop_event.set)
            self._thread.join(timeout=5)


def run_blocking(kernel: Any, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run a kernel coroutine function from sync code and return its result.

    A sync app's calls always go to its own loop thread, also from a worker thread of another
    loop (a plain ``def`` endpoint of FastAPI runs in one: going to FastAPI's loop would hang).
    An async app running on the caller's loop is reached from that loop's worker threads (a sync
    task); from anywhere else the call goes to the app's own loop thread.
    """
    if kernel._loop_thread is None:
        try:
            return anyio.from_thread.run(partial(func, *args, **kwargs))
        except NoEventLoopError:
            pass
    loop = kernel.loop_thread()
    if threading.current_thread() is loop.thread:
        raise RuntimeError("a blocking QTasks call was made on the app's own event loop: await the async API instead")
    return loop.call(func, *args, **kwargs)
