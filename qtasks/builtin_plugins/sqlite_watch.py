"""Cross-process wake-ups for SQLite: inotify on the WAL file, else a thread polling ``PRAGMA data_version``."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable

import anyio
import anyio.to_thread

__all__ = ["ChangeWatcher", "BUSY_INTERVAL", "IDLE_INTERVAL", "inotify_fd"]

BUSY_INTERVAL = 0.001  # polling: seconds between checks shortly after a change
IDLE_INTERVAL = 0.02  # polling: seconds between checks when nothing changed for BUSY_FOR
BUSY_FOR = 0.2
IN_MODIFY = 0x00000002


def inotify_fd(path: str) -> int | None:
    """A non-blocking inotify descriptor that reads an event whenever ``path`` is written, or
    None where inotify is missing (not Linux) or refused (the per-user limit of instances)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    if libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
        os.close(fd)
        return None
    return fd


class ChangeWatcher:
    """Tells this process's waiters that some connection, in any process, committed to the file.

    A waiter notes ``generation`` before it reads, then calls ``wait(since, timeout)``, which
    returns at once if a commit was seen since, so no wake-up is lost between the read and the
    wait. Commits of this process call ``touch``, which wakes its waiters at once. Commits of
    other processes are seen in one of two ways (``mode``):

    - ``"inotify"`` (Linux): every commit writes the ``-wal`` file, and the event loop reads the
      kernel's notification while someone waits. No thread, no polling: nothing runs while
      nothing is written or nobody waits.
    - ``"poll"`` (elsewhere, or when inotify is refused): a thread checks ``PRAGMA data_version``
      every millisecond while commits keep coming and every 20 ms once they stop, and sleeps on
      a ``threading.Event`` while nobody in the process waits.

    Args:
        connect: Opens a new connection to the watched file (for the polling thread).
        wal_path: The file's write-ahead log (``<file>-wal``).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], wal_path: str) -> None:
        self._connect = connect
        self._wal_path = wal_path
        self.generation = 0
        self.mode = "stopped"
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd: int | None = None
        self._waiting = 0
        self._wanted = threading.Event()
        self._stopping = threading.Event()

    def touch(self) -> None:
        """Wake the waiters now (called on the event loop)."""
        self.generation += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, since: int, timeout: float) -> None:
        """Return once ``generation`` differs from ``since`` (a commit was seen), or after ``timeout``."""
        if self.generation != since or timeout <= 0:
            return
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self._waiting += 1
        if self._waiting == 1:
            self._listen(True)
        try:
            with anyio.move_on_after(timeout):
                await event.wait()
        finally:
            self._waiting -= 1
            if self._waiting == 0:
                self._listen(False)

    def _listen(self, on: bool) -> None:
        """Watch for other processes' commits only while someone waits (a busy process that
        never waits is not woken by each of them); inotify keeps one pending event meanwhile."""
        if self._fd is not None and self._loop is not None:
            if on:
                self._loop.add_reader(self._fd, self._drain)
            else:
                self._loop.remove_reader(self._fd)
        elif on:
            self._wanted.set()
        else:
            self._wanted.clear()

    async def start(self, use_inotify: bool = True) -> None:
        """Start watching (called on the event loop once the file and its ``-wal`` exist)."""
        if self.mode != "stopped":
            return
        self._loop = asyncio.get_running_loop()
        fd = inotify_fd(self._wal_path) if use_inotify else None
        if fd is not None:
            self._fd, self.mode = fd, "inotify"
            if self._waiting:
                self._loop.add_reader(fd, self._drain)
            return
        self._stopping = stopping = threading.Event()
        ready = threading.Event()
        thread = threading.Thread(target=self._poll, args=(ready, stopping), name="qtasks-sqlite-watch", daemon=True)
        thread.start()
        self.mode = "poll"
        await anyio.to_thread.run_sync(ready.wait, 5.0)  # the thread has its baseline before anyone waits

    def stop(self) -> None:
        """Stop watching and wake every waiter."""
        if self._fd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        self._stopping.set()
        self._wanted.set()
        self.mode = "stopped"
        self.touch()

    def _drain(self) -> None:
        fd = self._fd
        try:
            while fd is not None and os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass
        self.touch()

    def _changed(self) -> None:
        if not self._stopping.is_set():
            self.touch()

    def _poll(self, ready: threading.Event, stopping: threading.Event) -> None:
        try:
            connection = self._connect()
            version = connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            ready.set()
            return
        ready.set()
        try:
            interval, last_change = BUSY_INTERVAL, time.monotonic()
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
