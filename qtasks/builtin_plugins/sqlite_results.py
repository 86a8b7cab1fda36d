"""Result waits on SQLite: one poller per storage re-reads the awaited records after each commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from qtasks.builtin_plugins.sqlite_database import SqliteDatabase
from qtasks.kernel.model import FINAL_STATUSES, Task

__all__ = ["ResultWaiter", "RECHECK_EVERY"]

RECHECK_EVERY = 1.0  # seconds the poller waits for a change before reading anyway


class _Slot:
    """The waiters of one task: woken with the final record."""

    def __init__(self) -> None:
        self.waiters = 0
        self.done = anyio.Event()
        self.task: Task | None = None


class ResultWaiter:
    """Wakes the callers waiting for final records.

    A final record stored by this process is handed over at once (``deliver``). For one stored
    by another process, a single poller task reads every awaited record still pending in one
    query, after each commit the database's change watcher sees (and at least every second),
    until nobody waits.

    Args:
        database: The app's shared database file.
        app_name: The app's name; it keys every row.
        decode: Turns a stored record into a :class:`Task`.
    """

    def __init__(self, database: SqliteDatabase, app_name: str, decode: Callable[[bytes], Task]) -> None:
        self.database = database
        self.app_name = app_name
        self.decode = decode
        self._slots: dict[str, _Slot] = {}
        self._poller: asyncio.Task[None] | None = None

    async def wait(self, key: str, timeout: float, first: Callable[[], Awaitable[Task | None]]) -> Task | None:
        """Return ``key``'s record once final, or None after ``timeout``; ``first()`` reads it once
        (after this waiter is registered, so no final record can slip between)."""
        slot = self._slots.setdefault(key, _Slot())
        slot.waiters += 1
        try:
            task = await first()
            if task is None or task.status in FINAL_STATUSES:
                return task
            if self._poller is None:
                self._poller = asyncio.get_running_loop().create_task(self._poll())
            with anyio.move_on_after(timeout):
                await slot.done.wait()
        finally:
            slot.waiters -= 1
            if slot.waiters == 0 and self._slots.get(key) is slot:
                del self._slots[key]
        return slot.task

    def deliver(self, task: Task) -> None:
        """Hand a final record to its waiters."""
        if task.status in FINAL_STATUSES:
            slot = self._slots.pop(str(task.uuid), None)
            if slot is not None:
                slot.task = task
                slot.done.set()

    async def close(self) -> None:
        """Wake every waiter (with no record) and stop the poller."""
        for slot in self._slots.values():
            slot.done.set()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait([self._poller])
            self._poller = None

    def _finals(self, connection: Any, keys: Sequence[str]) -> list[tuple[str, bytes]]:
        found: list[tuple[str, bytes]] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found += connection.execute(
                f"SELECT uuid, record FROM qtasks_records WHERE app = ? AND final = 1 AND uuid IN ({marks})", (self.app_name, *chunk)
            ).fetchall()
        return found

    async def _poll(self) -> None:
        watcher = self.database.watcher
        try:
            while self._slots:
                since = watcher.generation
                keys = list(self._slots)
                for _, record in await self.database.read(lambda c: self._finals(c, keys)):
                    self.deliver(self.decode(record))
                if self._slots:
                    await watcher.wait(since, RECHECK_EVERY)
        finally:
            self._poller = None
