"""Cross-process wake-ups for SQLite: a thread watches ``PRAGMA data_version``, woken by inotify where it can."""

from __future__ import annotations

import asyncio
import ctypes
import logging
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

log = logging.getLogger("qtasks.sqlite")

BUSY_INTERVAL = 0.001  # seconds between checks while the file keeps changing
BUSY_FOR = 0.2  # seconds of BUSY_INTERVAL checks after the last change (or inotify event)
IDLE_INTERVAL = 0.02  # polling mode: the longest pause between checks once the file is quiet
IDLE_CHECK = 1.0  # inotify mode: a quiet file is still checked once a second
SETTLE_FIRST = 0.0001  # inotify mode: after a write, look again after 0.1 ms, 0.2 ms, ... up to SETTLE_LAST
SETTLE_LAST = 0.1
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

    - ``mode == "inotify"`` (Linux): the thread sleeps until the ``-wal`` file is written, then
      checks at once. A commit writes the log before it becomes visible (after an fsync with
      ``synchronous=full``), so it checks again 0.1 ms later, then 0.2, 0.4... up to 0.1 s
      later, and then once a second while the file stays quiet. A quiet file costs nothing.
    - ``mode == "poll"`` (elsewhere, or when inotify is refused): it checks every millisecond for
      ``BUSY_FOR`` seconds after a change, then backs off to every 20 ms.

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

    def _written(self, fd: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the log to be written; drain the events and say whether it was."""
        if fd not in select.select([fd, self._wake_reader], [], [], timeout)[0]:
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
        except sqlite3.Error as error:
            log.warning("cannot watch %s for other processes' commits (%s); their tasks and results are seen "
                        "at the next claim or result check instead (within 5 s and 1 s)", self._wal_path[:-4], error)
            ready.set()
            return
        ready.set()
        try:
            interval, last_change = BUSY_INTERVAL, time.monotonic()
            while not stopping.is_set():
                if not self._wanted.wait(1.0):
                    continue
                if fd is None:  # polling: every millisecond for BUSY_FOR after a change, then backing off to 20 ms
                    time.sleep(interval)
                    interval = BUSY_INTERVAL if time.monotonic() - last_change < BUSY_FOR else min(interval * 2, IDLE_INTERVAL)
                elif self._written(fd, interval):  # inotify: at once after a write of the log, then backing off
                    interval = SETTLE_FIRST  # a commit writes the log before it shows: look again soon
                else:
                    interval = IDLE_CHECK if interval >= SETTLE_LAST else interval * 2
                current = connection.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version, last_change = current, time.monotonic()
                    loop = self._loop
                    if loop is not None and not loop.is_closed():
                        loop.call_soon_threadsafe(self._changed)
        except (sqlite3.Error, RuntimeError):  # file gone or loop closed: waiters fall back on their timeouts
            pass
        finally:
            connection.close()
            if fd is not None:
                os.close(fd)
