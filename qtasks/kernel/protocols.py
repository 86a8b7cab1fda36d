"""Typed Protocols for the components the kernel calls directly: broker, storage, serializer, ..."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

import attrs

from qtasks.kernel.model import DeadLetter, Delivery, Envelope, ExecutionCall, Task, TaskMessage, WorkerInfo

if TYPE_CHECKING:
    from qtasks.kernel.worker import Worker

__all__ = ["Broker", "Storage", "CoupledStorage", "GlobalConfig", "Serializer", "Executor", "QueueCounts", "QueueStats", "RecordStats"]


@runtime_checkable
class Broker(Protocol):
    """Queues envelopes and leases them to workers; lower priority first, FIFO within a priority.

    A claimed envelope is leased for ``lease`` seconds. Its worker renews the lease while it
    lives (``heartbeat``); an envelope whose lease runs out goes back to the queue with its
    ``lost`` count raised, so a dead worker's tasks run again elsewhere.
    """

    lease: float

    async def start(self) -> None:
        """Open connections; called once before first use."""

    async def stop(self) -> None:
        """Close connections."""

    async def ping(self) -> bool:
        """Return whether the broker answers."""

    async def enqueue(self, envelopes: Sequence[Envelope]) -> None:
        """Queue envelopes (all or none); an envelope is not claimable before ``not_before``.

        Queuing an envelope whose uuid is already queued or claimed changes nothing.
        """

    async def claim(self, worker_id: str, max_count: int, timeout: float) -> list[Delivery]:
        """Wait up to ``timeout`` seconds for at least one envelope; lease out at most ``max_count``."""

    async def heartbeat(self, worker: WorkerInfo, deliveries: Sequence[Delivery]) -> None:
        """Record ``worker`` as alive (with what it runs) and renew the leases of its deliveries."""

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a stopping worker from the registry."""

    async def workers(self) -> list[WorkerInfo]:
        """Return the live workers (those whose last heartbeat is within three leases)."""

    async def ack(self, delivery: Delivery) -> None:
        """Forget a delivery for good; called after its final record is stored."""

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Give a delivery back, claimable again after ``delay`` seconds (retries, graceful stop)."""

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a delivery to the dead-letter queue with ``reason``."""

    async def cancel(self, uuid: str) -> bool:
        """Drop a queued envelope that no worker has claimed; return whether there was one."""

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Return up to ``limit`` dead letters, oldest first."""

    async def requeue_dead(self, uuids: Sequence[str] | None = None) -> list[str]:
        """Queue dead letters again (all when ``uuids`` is None) with fresh counts; return their uuids."""

    async def purge_dead(self) -> int:
        """Drop every dead letter; return how many."""

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
        """Store a record, replacing the one with the same uuid; a final record expires after
        the app's ``result_ttl`` and wakes whoever waits for it."""

    async def get(self, uuid: UUID) -> Task | None:
        """Return the record, or None."""

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """Return the record once its status is final, or None after ``timeout`` seconds."""

    async def purge(self) -> int:
        """Drop every record; return how many."""


@runtime_checkable
class CoupledStorage(Protocol):
    """A storage on its broker's own server, which stores a record and changes the queue in one
    atomic step. The kernel uses these methods only when ``couples_with(broker)`` is true;
    otherwise it saves the record and then calls the broker."""

    def couples_with(self, broker: Broker) -> bool:
        """Return whether this storage can change ``broker``'s queue atomically."""

    async def save_enqueue(self, tasks: Sequence[Task], envelopes: Sequence[Envelope]) -> None:
        """Store ``new`` records and queue their envelopes (all or none)."""

    async def save_ack(self, task: Task, delivery: Delivery) -> None:
        """Store a final record and acknowledge its delivery."""

    async def save_requeue(self, task: Task, delivery: Delivery, delay: float) -> None:
        """Store a record and give its delivery back, claimable after ``delay`` seconds."""

    async def save_dead_letter(self, task: Task, delivery: Delivery, reason: str) -> None:
        """Store an ``error`` record and move its delivery to the dead-letter queue."""

    async def save_cancel(self, task: Task) -> bool:
        """Drop the queued, unclaimed envelope of ``task`` and store its ``cancel`` record; return
        False (storing nothing) when it is no longer queued."""


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

    async def delete(self, name: str, key: str | None = None) -> None:
        """Remove ``name``/``key``, or every key under ``name`` when ``key`` is None."""

    async def set_many(self, name: str, values: Mapping[str, Any]) -> None:
        """Write every key of ``values`` under ``name`` in one atomic step (all or none)."""

    async def compare_and_swap(self, name: str, key: str, expected: Any, value: Any) -> Any:
        """Atomically: if ``name``/``key`` holds ``expected``, write ``value`` there; return the
        value held before either way.

        Values are compared by their stored JSON encoding. ``expected`` None matches an absent
        key (or a stored None); ``value`` None removes the key. So ``compare_and_swap(n, k,
        None, v)`` sets ``v`` only if nothing is there, and returns None when it did.
        """


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


@attrs.frozen(kw_only=True)
class QueueCounts:
    """What a broker's queue holds at one moment, as ``QueueStats.queue_counts`` returns it.

    A delayed envelope whose time has come, or a lease that ran out, keeps its state until a
    worker's next claim moves it back to ``ready``.
    """

    ready: Mapping[int, int]
    """Claimable envelopes by priority (only the priorities that have some)."""
    delayed: int
    """Envelopes not claimable yet: a countdown, an eta, or a retry's delay."""
    leased: int
    """Envelopes claimed by a worker: running, or about to run."""
    dead: int
    """Envelopes in the dead-letter queue."""

    @property
    def ready_total(self) -> int:
        """Claimable envelopes of every priority."""
        return sum(self.ready.values())


@runtime_checkable
class QueueStats(Protocol):
    """Optional on a broker: counts of its queue, for ``qtasks top`` and the stats inspector."""

    async def queue_counts(self) -> QueueCounts:
        """Return the counts of every state of the queue at one moment."""


@runtime_checkable
class RecordStats(Protocol):
    """Optional on a storage: counts of its records, for ``qtasks top`` and the stats inspector."""

    async def status_counts(self) -> dict[str, int]:
        """Return the records kept now by status (a final record counts until it expires)."""

    async def finished_within(self, seconds: float) -> dict[str, int]:
        """Return, by final status, the records that became final in the last ``seconds`` seconds
        (at least the last 300 seconds can be asked for)."""
