"""Cross-process wake-ups for SQLite: a thread watches ``PRAGMA data_version``, woken by inotify where it can."""

from __future__ import annotations

import asyncio
import ctypes
import os
import select
import sqlite3
import sys
import threading
import time
from collections.abc import Callable

import anyio
import anyio.to_thread

__all__ = ["ChangeWatcher", "BUSY_INTERVAL", "IDLE_INTERVAL", "BUSY_FOR", "inotify_fd"]

BUSY_INTERVAL = 0.001  # seconds between checks while the file keeps changing
BUSY_FOR = 0.2  # seconds of BUSY_INTERVAL checks after the last change (or inotify event)
IDLE_INTERVAL = 0.02  # polling mode: the longest pause between checks once the file is quiet
IDLE_CHECK = 1.0  # inotify mode: a quiet file is still checked once a second
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
    wait. Commits of this process call ``touch``, which wakes its waiters at once.

    Commits of other processes are seen by a thread that compares ``PRAGMA data_version`` (a read
    of the WAL index in shared memory, no disk I/O), only while someone in the process waits:
    every millisecond for ``BUSY_FOR`` seconds after a change, then, when the file is quiet:

    - ``mode == "inotify"`` (Linux): it blocks until the ``-wal`` file is written (inotify), so a
      quiet file costs nothing. A commit writes the log before it becomes visible, so the thread
      checks every millisecond after each write until the change shows.
    - ``mode == "poll"`` (elsewhere, or when inotify is refused): it checks every 20 ms.

    Args:
        connect: Opens a new connection to the watched file (for the thread).
        wal_path: The file's write-ahead log (``<file>-wal``).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], wal_path: str) -> None:
        self._connect = connect
        self._wal_path = wal_path
        self.generation = 0
        self.mode = "stopped"
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = 0
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_reader = self._wake_writer = -1

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
        self._wanted.set()
        try:
            with anyio.move_on_after(timeout):
                await event.wait()
        finally:
            self._waiting -= 1
            if self._waiting == 0:
                self._wanted.clear()

    async def start(self) -> None:
        """Start the thread (on the event loop, once the file and its ``-wal`` exist); it takes the
        file's version before anyone waits, so a commit between a waiter's read and its wait is seen."""
        if self.mode != "stopped":
            return
        self._loop = asyncio.get_running_loop()
        fd = inotify_fd(self._wal_path)
        self.mode = "poll" if fd is None else "inotify"
        self._stopping = stopping = threading.Event()
        self._wake_reader, self._wake_writer = os.pipe()  # ends the thread's select at once on stop
        ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(fd, ready, stopping), name="qtasks-sqlite-watch", daemon=True)
        self._thread.start()
        await anyio.to_thread.run_sync(ready.wait, 5.0)

    async def stop(self) -> None:
        """Stop the thread, wait until it has closed its connection, and wake every waiter."""
        self._stopping.set()
        self._wanted.set()
        self.mode = "stopped"
        self.touch()
        thread, self._thread = self._thread, None
        if thread is not None:
            os.write(self._wake_writer, b"x")
            await anyio.to_thread.run_sync(thread.join)
            os.close(self._wake_reader)
            os.close(self._wake_writer)

    def _changed(self) -> None:
        if not self._stopping.is_set():
            self.touch()

    def _quiet_wait(self, fd: int | None, interval: float) -> bool:
        """Block while the file is quiet: until its log is written (inotify; True), or for
        ``interval`` (polling) or ``IDLE_CHECK`` seconds (inotify; False)."""
        if fd is None:
            time.sleep(interval)
            return False
        readable = select.select([fd, self._wake_reader], [], [], IDLE_CHECK)[0]
        if fd not in readable:
            return False
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def _watch(self, fd: int | None, ready: threading.Event, stopping: threading.Event) -> None:
        try:
            connection = self._connect()
            version = connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            ready.set()
            return
        ready.set()
        try:
            interval, busy_since = BUSY_INTERVAL, time.monotonic()
            while not stopping.is_set():
                if not self._wanted.wait(1.0):
                    continue
                if time.monotonic() - busy_since < BUSY_FOR:
                    time.sleep(BUSY_INTERVAL)
                else:
                    if self._quiet_wait(fd, interval):
                        busy_since = time.monotonic()  # the log was written: check closely until the change shows
                    interval = min(interval * 2, IDLE_INTERVAL)
                current = connection.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version, busy_since, interval = current, time.monotonic(), BUSY_INTERVAL
                    loop = self._loop
                    if loop is not None and not loop.is_closed():
                        loop.call_soon_threadsafe(self._changed)
        except (sqlite3.Error, RuntimeError):  # file gone or loop closed: waiters fall back on their timeouts
            pass
        finally:
            connection.close()
            if fd is not None:
                os.close(fd)
