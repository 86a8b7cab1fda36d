"""``memory://`` storage: task records in a dict; waiters are woken when a task ends."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import anyio

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import FINAL_STATUSES, Task
from qtasks.kernel.urls import scheme_of

__all__ = ["MemoryStorage", "qtasks_make_storage"]


class MemoryStorage:
    """Keeps records in one process; ``wait`` returns as soon as ``save`` stores a final status."""

    def __init__(self) -> None:
        self._records: dict[UUID, Task] = {}
        self._waiters: dict[UUID, anyio.Event] = {}

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Wake every waiter so that nothing hangs on a stopped storage."""
        for event in self._waiters.values():
            event.set()

    async def save(self, task: Task) -> None:
        """Store the record and wake whoever waits for it when its status is final."""
        self._records[task.uuid] = task
        if task.status in FINAL_STATUSES:
            event = self._waiters.pop(task.uuid, None)
            if event is not None:
                event.set()

    async def get(self, uuid: UUID) -> Task | None:
        """Return the record, or None."""
        return self._records.get(uuid)

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """Return the record once final, or None after ``timeout`` (or at once for an unknown uuid)."""
        task = self._records.get(uuid)
        if task is None or task.status in FINAL_STATUSES:
            return task
        event = self._waiters.get(uuid)
        if event is None:
            event = self._waiters[uuid] = anyio.Event()
        with anyio.move_on_after(timeout):
            await event.wait()
        task = self._records.get(uuid)
        return task if task is not None and task.status in FINAL_STATUSES else None

    async def purge(self) -> int:
        """Drop every record."""
        count = len(self._records)
        self._records.clear()
        return count


@hookimpl(trylast=True)
def qtasks_make_storage(app: Any, url: str) -> MemoryStorage | None:
    """Serve ``memory://`` URLs."""
    return MemoryStorage() if scheme_of(url) == "memory" else None
