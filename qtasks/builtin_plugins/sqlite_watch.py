"""Cross-process wake-ups for SQLite: a thread watches ``PRAGMA data_version`` while anyone waits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable

import anyio

__all__ = ["ChangeWatcher", "BUSY_INTERVAL", "IDLE_INTERVAL"]

BUSY_INTERVAL = 0.001  # seconds between checks shortly after a change
IDLE_INTERVAL = 0.02  # seconds between checks when nothing changed for BUSY_FOR
BUSY_FOR = 0.2


class ChangeWatcher:
    """Tells this process's waiters that some connection, in any process, committed to the file.

    A waiter notes ``generation`` before it reads, then calls ``wait(since, timeout)``, which
    returns at once if a commit was seen since, so no wake-up is lost between the read and the
    wait. The thread checks ``PRAGMA data_version`` (a read of the WAL index, no disk I/O) every
    millisecond while commits keep coming and every 20 ms once they stop, and sleeps on a
    ``threading.Event`` (no CPU at all) while nobody waits. Commits of this process also call
    ``touch``, which wakes its waiters at once.

    Args:
        connect: Opens a new connection to the watched file (used by the thread only).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self.generation = 0
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = 0
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self) -> None:
        """Wake the waiters now (called on the event loop after a commit of this process)."""
        self.generation += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, since: int, timeout: float) -> None:
        """Return once ``generation`` differs from ``since`` (a commit was seen), or after ``timeout``."""
        if self.generation != since or timeout <= 0:
            return
        self._loop = asyncio.get_running_loop()
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self._waiting += 1
        self._wanted.set()
        try:
            with anyio.move_on_after(timeout):
                await event.wait()
        finally:
            self._waiting -= 1
            if self._waiting == 0:
                self._wanted.clear()

    def start(self) -> None:
        """Start the thread; it takes the file's current version before anyone waits, so a commit
        made between a waiter's read and its wait is always seen."""
        if self._thread is None:
            self._stopping = stopping = threading.Event()
            ready = threading.Event()
            self._thread = threading.Thread(target=self._watch, args=(ready, stopping), name="qtasks-sqlite-watch", daemon=True)
            self._thread.start()
            ready.wait(5.0)

    def stop(self) -> None:
        """Stop the thread (it ends within one interval) and wake every waiter."""
        self._stopping.set()
        self._wanted.set()
        self._thread = None
        self.touch()

    def _changed(self) -> None:
        if not self._stopping.is_set():
            self.touch()

    def _watch(self, ready: threading.Event, stopping: threading.Event) -> None:
        try:
            connection = self._connect()
            version = connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            ready.set()
            return
        ready.set()
        try:
            interval = BUSY_INTERVAL
            last_change = time.monotonic()
            while not stopping.is_set():
                if not self._wanted.wait(1.0):
                    continue
                time.sleep(interval)
                current = connection.execute("PRAGMA data_version").fetchone()[0]
                clock = time.monotonic()
                if current != version:
                    version, last_change = current, clock
                    loop = self._loop
                    if loop is not None and not loop.is_closed():
                        loop.call_soon_threadsafe(self._changed)
                interval = BUSY_INTERVAL if clock - last_change < BUSY_FOR else min(interval * 2, IDLE_INTERVAL)
        except (sqlite3.Error, RuntimeError):  # file gone or loop closed: waiters fall back on their timeouts
            pass
        finally:
            connection.close()
