"""Typed Protocols for the components the kernel calls directly: broker, storage, serializer, ..."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

from qtasks.kernel.model import Delivery, Envelope, ExecutionCall, Task, TaskMessage

if TYPE_CHECKING:
    from qtasks.kernel.worker import Worker

__all__ = ["Broker", "Storage", "GlobalConfig", "Serializer", "Executor"]


@runtime_checkable
class Broker(Protocol):
    """Queues envelopes and hands them to workers; lower priority first, FIFO within a priority."""

    async def start(self) -> None:
        """Open connections; called once before first use."""

    async def stop(self) -> None:
        """Close connections."""

    async def enqueue(self, envelopes: Sequence[Envelope]) -> None:
        """Queue envelopes (all or none); an envelope is not claimable before ``not_before``."""

    async def claim(self, worker_id: str, max_count: int, timeout: float) -> list[Delivery]:
        """Wait up to ``timeout`` seconds for at least one envelope; return at most ``max_count``."""

    async def ack(self, delivery: Delivery) -> None:
        """Forget a delivery for good; called after its final record is stored."""

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Give a delivery back, claimable again after ``delay`` seconds (retries, graceful stop)."""

    async def purge(self) -> int:
        """Drop every queued envelope; return how many."""


@runtime_checkable
class Storage(Protocol):
    """Keeps task records and wakes up whoever waits for a task's final status."""

    async def start(self) -> None:
        """Open connections; called once before first use."""

    async def stop(self) -> None:
        """Close connections."""

    async def save(self, task: Task) -> None:
        """Store a record, replacing the one with the same uuid."""

    async def get(self, uuid: UUID) -> Task | None:
        """Return the record, or None."""

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """Return the record once its status is final, or None after ``timeout`` seconds."""

    async def purge(self) -> int:
        """Drop every record; return how many."""


@runtime_checkable
class GlobalConfig(Protocol):
    """A shared key/value store for settings that every process of an app sees."""

    async def start(self) -> None:
        """Open connections."""

    async def stop(self) -> None:
        """Close connections."""

    async def set(self, name: str, key: str, value: Any) -> None:
        """Write ``value`` under ``name``/``key``."""

    async def get(self, name: str, key: str) -> Any:
        """Read one value, or None."""

    async def get_all(self, name: str) -> dict[str, Any]:
        """Read every key under ``name``."""

    async def get_match(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Read every name matching a glob ``pattern``."""


@runtime_checkable
class Serializer(Protocol):
    """Turns task messages into bytes and back; never unpickles."""

    content_type: str

    def dumps(self, message: TaskMessage) -> bytes:
        """Encode a message; raise ``SerializationError`` naming what cannot be encoded."""

    def loads(self, payload: bytes) -> TaskMessage:
        """Decode a message; raise ``SerializationError`` for a payload it cannot read."""


@runtime_checkable
class Executor(Protocol):
    """Runs one task definition's function for a resolved call."""

    async def execute(self, worker: Worker, call: ExecutionCall) -> Any:
        """Run the call and return its result; exceptions propagate to the worker."""
