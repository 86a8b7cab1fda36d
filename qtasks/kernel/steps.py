"""Record-and-queue steps: one atomic call when the storage is coupled to the broker, else two."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qtasks.kernel.model import Delivery, Envelope, Task
from qtasks.kernel.protocols import CoupledStorage

__all__ = ["Steps"]


class Steps:
    """The state changes that touch both a task's record and its place in the queue.

    When the storage lives on the broker's server (``CoupledStorage.couples_with(broker)``),
    each step is one atomic call; otherwise the record is stored first and the queue changed
    after, so that a task is never acknowledged before its outcome is stored.

    Args:
        broker: The app's broker.
        storage: The app's storage.
    """

    def __init__(self, broker: Any, storage: Any) -> None:
        self.broker = broker
        self.storage = storage
        self.coupled: CoupledStorage | None = None
        if isinstance(storage, CoupledStorage) and storage.couples_with(broker):
            self.coupled = storage

    async def enqueue(self, tasks: Sequence[Task], envelopes: Sequence[Envelope]) -> None:
        """Store ``new`` records and queue their envelopes."""
        if self.coupled is not None:
            await self.coupled.save_enqueue(tasks, envelopes)
            return
        for task in tasks:
            await self.storage.save(task)
        await self.broker.enqueue(envelopes)

    async def ack(self, task: Task, delivery: Delivery) -> None:
        """Store a final record, then acknowledge its delivery."""
        if self.coupled is not None:
            await self.coupled.save_ack(task, delivery)
            return
        await self.storage.save(task)
        await self.broker.ack(delivery)

    async def requeue(self, task: Task, delivery: Delivery, delay: float) -> None:
        """Store a record (``retry`` or ``new``), then give the delivery back."""
        if self.coupled is not None:
            await self.coupled.save_requeue(task, delivery, delay)
            return
        await self.storage.save(task)
        await self.broker.requeue(delivery, delay)

    async def dead_letter(self, task: Task, delivery: Delivery, reason: str) -> None:
        """Store an ``error`` record, then move the delivery to the dead-letter queue."""
        if self.coupled is not None:
            await self.coupled.save_dead_letter(task, delivery, reason)
            return
        await self.storage.save(task)
        await self.broker.dead_letter(delivery, reason)

    async def cancel(self, task: Task) -> bool:
        """Drop a queued, unclaimed task and store its ``cancel`` record; False if it was claimed."""
        if self.coupled is not None:
            return await self.coupled.save_cancel(task)
        if not await self.broker.cancel(str(task.uuid)):
            return False
        await self.storage.save(task)
        return True
