"""RecordRoundTrip: a storage wrapper that stores each record as the SQLite and Redis storages do (JSON)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from qtasks.builtin_plugins.records import RecordCodec
from qtasks.kernel.model import Task

__all__ = ["RecordRoundTrip"]


class RecordRoundTrip:
    """Stores through another storage, after a round trip through :class:`RecordCodec`.

    A record whose result or arguments JSON cannot carry raises ``SerializationError`` at
    ``save``, as on the SQLite and Redis storages; the worker then ends the task ``error``
    ("the result cannot be stored: ..."). What is kept, and read back, is the decoded record,
    so a tuple result comes back as a list and an attrs result as a dict, as it would there.
    Every other storage method is the wrapped storage's.

    Args:
        storage: The storage that keeps the records (an in-memory one, in tests).
    """

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.codec = RecordCodec()

    async def save(self, task: Task) -> None:
        """Encode the record, decode it again, and store what came back."""
        await self.storage.save(self.codec.loads(self.codec.dumps(task), app=task.app))

    async def get(self, uuid: UUID) -> Task | None:
        """The wrapped storage's record, or None."""
        return await self.storage.get(uuid)

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """The wrapped storage's ``wait``."""
        return await self.storage.wait(uuid, timeout)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "storage":
            raise AttributeError(name)
        return getattr(self.storage, name)
