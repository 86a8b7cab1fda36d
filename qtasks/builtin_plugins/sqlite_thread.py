"""One SQLite connection owned by one thread; the event loop hands it calls and awaits the results."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

__all__ = ["ConnectionThread"]

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if not future.done():
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class ConnectionThread:
    """A thread that opens a connection and runs ``call(operation)`` as ``operation(connection)``, in order.

    Cheaper than a thread pool per call (one queue put, one ``call_soon_threadsafe``), and the
    connection is only ever used by the thread that made it. A call whose caller is cancelled
    still runs (like a request already sent to a server); its result is dropped.

    Args:
        name: The thread's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is started and not stopped."""
        return self._thread is not None

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        """Start the thread and open its connection with ``connect()`` (its error is raised here)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        try:
            await self.call(lambda _: None, connect)
        except BaseException:
            await self.stop()
            raise

    async def call(self, operation: Callable[[sqlite3.Connection], T], connect: Callable[[], sqlite3.Connection] | None = None) -> T:
        """Run ``operation(connection)`` on the thread and return its result (or raise its error)."""
        if self._thread is None:
            raise RuntimeError(f"{self.name} is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.send(operation, partial(_settle, future), connect)
        return await future

    def send(self, operation: Callable[[sqlite3.Connection], Any], done: Callable[[bool, Any], None],
             connect: Callable[[], sqlite3.Connection] | None = None) -> None:
        """Queue ``operation(connection)``; ``done(ok, result or error)`` is then called on this event loop."""
        if self._thread is None:
            raise RuntimeError(f"{self.name} is not running")
        self._calls.put((operation, connect, asyncio.get_running_loop(), done))

    async def stop(self) -> None:
        """Finish the queued calls, close the connection and end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._calls.put(None)
            await anyio.to_thread.run_sync(thread.join)

    def _serve(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                item = self._calls.get()
                if item is None:
                    return
                operation, connect, loop, done = item
                try:
                    if connect is not None:
                        connection = connect()
                    result, ok = operation(connection), True  # type: ignore[arg-type]
                except BaseException as error:  # handed to the caller
                    result, ok = error, False
                try:
                    loop.call_soon_threadsafe(done, ok, result)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    pass
        finally:
            if connection is not None:
                connection.close()
