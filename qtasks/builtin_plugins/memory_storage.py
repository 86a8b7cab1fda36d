"""``memory://`` storage: task records in a dict; waiters are woken when a task ends."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any
from uuid import UUID

import anyio

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import FINAL_STATUSES, Task
from qtasks.kernel.urls import scheme_of

__all__ = ["MemoryStorage", "qtasks_make_storage"]


class MemoryStorage:
    """Keeps records in one process; ``wait`` returns as soon as ``save`` stores a final status.

    Args:
        result_ttl: Seconds a final record is kept.
    """

    def __init__(self, result_ttl: float = 86400.0) -> None:
        self.result_ttl = result_ttl
        self._records: dict[UUID, Task] = {}
        self._waiters: dict[UUID, anyio.Event] = {}
        self._expiry: dict[UUID, float] = {}
        self._expiring: deque[tuple[float, UUID]] = deque()

    def _expire(self) -> None:
        clock = time.monotonic()
        while self._expiring and self._expiring[0][0] <= clock:
            _, uuid = self._expiring.popleft()
            deadline = self._expiry.get(uuid)
            if deadline is not None and deadline <= clock:
                del self._expiry[uuid]
                self._records.pop(uuid, None)

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Wake every waiter so that nothing hangs on a stopped storage."""
        for event in self._waiters.values():
            event.set()

    async def save(self, task: Task) -> None:
        """Store the record and wake whoever waits for it when its status is final."""
        self._expire()
        self._records[task.uuid] = task
        if task.status not in FINAL_STATUSES:
            self._expiry.pop(task.uuid, None)
        else:
            deadline = time.monotonic() + self.result_ttl
            self._expiry[task.uuid] = deadline
            self._expiring.append((deadline, task.uuid))
            event = self._waiters.pop(task.uuid, None)
            if event is not None:
                event.set()

    async def get(self, uuid: UUID) -> Task | None:
        """Return the record, or None (also once it has expired)."""
        self._expire()
        return self._records.get(uuid)

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """Return the record once final, or None after ``timeout`` (or at once for an unknown uuid)."""
        task = await self.get(uuid)
        if task is None or task.status in FINAL_STATUSES:
            return task
        event = self._waiters.get(uuid)
        if event is None:
            event = self._waiters[uuid] = anyio.Event()
        with anyio.move_on_after(timeout):
            await event.wait()
        task = self._records.get(uuid)
        return task if task is not None and task.status in FINAL_STATUSES else None

    async def status_counts(self) -> dict[str, int]:
        """The records kept, by status (one pass over them)."""
        self._expire()
        return dict(Counter(task.status for task in self._records.values()))

    async def finished_within(self, seconds: float) -> dict[str, int]:
        """The records that became final in the last ``seconds`` seconds, by status (one pass)."""
        self._expire()
        since = time.time() - seconds
        return dict(Counter(
            task.status for task in self._records.values() if task.status in FINAL_STATUSES and task.updated_at.timestamp() >= since
        ))

    async def purge(self) -> int:
        """Drop every record."""
        count = len(self._records)
        self._records.clear()
        self._expiry.clear()
        self._expiring.clear()
        return count


@hookimpl(trylast=True)
def qtasks_make_storage(app: Any, url: str) -> MemoryStorage | None:
    """Serve ``memory://`` URLs."""
    return MemoryStorage(result_ttl=app.config.result_ttl) if scheme_of(url) == "memory" else None
