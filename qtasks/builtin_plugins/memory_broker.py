"""``memory://`` broker: one process's queue, ordered by priority then FIFO, with delays and leases."""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import DeadLetter, Delivery, Envelope, WorkerInfo
from qtasks.kernel.protocols import QueueCounts
from qtasks.kernel.urls import scheme_of

__all__ = ["MemoryBroker", "qtasks_make_broker"]


@attrs.define
class _Entry:
    envelope: Envelope
    state: str = "ready"  # ready, delayed, leased or dead
    token: int = 0  # changes on every move, so that stale heap items are skipped
    deliveries: int = 0
    lost: int = 0
    deadline: float = 0.0
    reason: str = ""
    dead_at: float = 0.0


class MemoryBroker:
    """An in-process broker for tests and single-process apps; nothing survives the process.

    Claimed envelopes are leased for ``lease`` seconds; a lease that runs out without a renewal,
    an ack or a requeue puts the envelope back with its ``lost`` count raised.

    Args:
        lease: Seconds a claim lasts without a heartbeat.
    """

    def __init__(self, lease: float = 30.0) -> None:
        self.lease = lease
        self._entries: dict[str, _Entry] = {}
        self._ready: list[tuple[int, int, str]] = []
        self._delayed: list[tuple[float, int, str]] = []
        self._leases: list[tuple[float, int, str]] = []
        self._workers: dict[str, WorkerInfo] = {}
        self._seq = itertools.count(1)
        self._wakeup: anyio.Event | None = None

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def ping(self) -> bool:
        """Always answers."""
        return True

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def _place(self, entry: _Entry, not_before: float) -> None:
        entry.token = next(self._seq)
        uuid = entry.envelope.uuid
        if not_before > time.time():
            entry.state = "delayed"
            heapq.heappush(self._delayed, (not_before, entry.token, uuid))
        else:
            entry.state = "ready"
            heapq.heappush(self._ready, (entry.envelope.priority, entry.token, uuid))

    def _current(self, uuid: str, token: int, state: str) -> _Entry | None:
        entry = self._entries.get(uuid)
        return entry if entry is not None and entry.token == token and entry.state == state else None

    async def enqueue(self, envelopes: Sequence[Envelope]) -> None:
        """Queue envelopes (a uuid already known is left as it is) and wake the claimers."""
        for envelope in envelopes:
            if envelope.uuid not in self._entries:
                entry = self._entries[envelope.uuid] = _Entry(envelope)
                self._place(entry, envelope.not_before)
        self._wake()

    def _promote(self, clock: float) -> None:
        while self._delayed and self._delayed[0][0] <= clock:
            _, token, uuid = heapq.heappop(self._delayed)
            entry = self._current(uuid, token, "delayed")
            if entry is not None:
                self._place(entry, 0.0)
        while self._leases and self._leases[0][0] <= clock:
            _, token, uuid = heapq.heappop(self._leases)
            entry = self._current(uuid, token, "leased")
            if entry is not None and entry.deadline <= clock:
                entry.lost += 1
                self._place(entry, 0.0)
            elif entry is not None:  # renewed: wait for the new deadline
                heapq.heappush(self._leases, (entry.deadline, token, uuid))

    def _take(self, max_count: int) -> list[Delivery]:
        clock = time.time()
        self._promote(clock)
        taken = []
        while self._ready and len(taken) < max_count:
            _, token, uuid = heapq.heappop(self._ready)
            entry = self._current(uuid, token, "ready")
            if entry is None:
                continue
            entry.state, entry.token, entry.deadline = "leased", next(self._seq), clock + self.lease
            entry.deliveries += 1
            heapq.heappush(self._leases, (entry.deadline, entry.token, uuid))
            taken.append(Delivery(envelope=entry.envelope, delivery_count=entry.deliveries, lost=entry.lost, receipt=entry.token))
        return taken

    def _next_due(self) -> float:
        dues = [heap[0][0] for heap in (self._delayed, self._leases) if heap]
        return min(dues) - time.time() if dues else math.inf

    async def claim(self, worker_id: str, max_count: int, timeout: float) -> list[Delivery]:
        """Lease out up to ``max_count`` envelopes, waiting up to ``timeout`` seconds for the first."""
        await anyio.lowlevel.checkpoint()  # yield once per claim, as a network round trip would
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take(max_count)
            if taken:
                return taken
            remaining = min(deadline - time.monotonic(), max(self._next_due(), 0.0))
            if deadline - time.monotonic() <= 0:
                return []
            if self._wakeup is None:
                self._wakeup = anyio.Event()
            with anyio.move_on_after(remaining if remaining != math.inf else None):
                await self._wakeup.wait()

    async def heartbeat(self, worker: WorkerInfo, deliveries: Sequence[Delivery]) -> None:
        """Register the worker and push back the deadlines of its leases."""
        self._workers[worker.worker_id] = worker
        deadline = time.time() + self.lease
        for delivery in deliveries:
            entry = self._leased(delivery)
            if entry is not None:
                entry.deadline = deadline

    async def forget_worker(self, worker_id: str) -> None:
        """Drop the worker from the registry."""
        self._workers.pop(worker_id, None)

    async def workers(self) -> list[WorkerInfo]:
        """Workers seen within three leases."""
        oldest = time.time() - 3 * self.lease
        return [w for w in self._workers.values() if w.seen_at >= oldest]

    def _leased(self, delivery: Delivery) -> _Entry | None:
        """The entry while ``delivery``'s own lease holds it (the token changes on every move)."""
        entry = self._entries.get(delivery.envelope.uuid)
        return entry if entry is not None and entry.state == "leased" and entry.token == delivery.receipt else None

    async def ack(self, delivery: Delivery) -> None:
        """Forget the envelope (only while this delivery's lease holds it)."""
        if self._leased(delivery) is not None:
            del self._entries[delivery.envelope.uuid]

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Put the envelope back, claimable after ``delay`` seconds; its lost count is unchanged."""
        entry = self._leased(delivery)
        if entry is not None:
            self._place(entry, time.time() + delay if delay > 0 else 0.0)
            self._wake()

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the envelope to the dead-letter queue."""
        entry = self._leased(delivery)
        if entry is not None:
            entry.state, entry.token, entry.reason, entry.dead_at = "dead", next(self._seq), reason, time.time()

    async def cancel(self, uuid: str) -> bool:
        """Drop a queued envelope that is not leased."""
        entry = self._entries.get(uuid)
        if entry is None or entry.state not in ("ready", "delayed"):
            return False
        del self._entries[uuid]
        return True

    def _dead(self) -> list[_Entry]:
        return sorted((e for e in self._entries.values() if e.state == "dead"), key=lambda e: e.token)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        return [
            DeadLetter(uuid=e.envelope.uuid, reason=e.reason, dead_at=e.dead_at, priority=e.envelope.priority, payload=e.envelope.payload, delivery_count=e.deliveries)
            for e in self._dead()[:limit]
        ]

    async def requeue_dead(self, uuids: Sequence[str] | None = None) -> list[str]:
        """Queue dead letters again with fresh counts."""
        chosen = [e for e in self._dead() if uuids is None or e.envelope.uuid in uuids]
        for entry in chosen:
            entry.deliveries = entry.lost = 0
            self._place(entry, 0.0)
        self._wake()
        return [e.envelope.uuid for e in chosen]

    async def purge_dead(self) -> int:
        """Drop every dead letter."""
        dead = self._dead()
        for entry in dead:
            del self._entries[entry.envelope.uuid]
        return len(dead)

    async def purge(self) -> int:
        """Drop every queued envelope (leased and dead ones stay)."""
        queued = [uuid for uuid, e in self._entries.items() if e.state in ("ready", "delayed")]
        for uuid in queued:
            del self._entries[uuid]
        self._ready.clear()
        self._delayed.clear()
        return len(queued)

    async def depth(self) -> int:
        """Envelopes waiting to be claimed (ready and delayed)."""
        return sum(1 for e in self._entries.values() if e.state in ("ready", "delayed"))

    async def queue_counts(self) -> QueueCounts:
        """Count the envelopes in each state (one pass over them)."""
        ready: dict[int, int] = {}
        states = {"delayed": 0, "leased": 0, "dead": 0}
        for entry in self._entries.values():
            if entry.state == "ready":
                ready[entry.envelope.priority] = ready.get(entry.envelope.priority, 0) + 1
            else:
                states[entry.state] += 1
        return QueueCounts(ready=dict(sorted(ready.items())), **states)


@hookimpl(trylast=True)
def qtasks_make_broker(app: Any, url: str) -> MemoryBroker | None:
    """Serve ``memory://`` URLs."""
    return MemoryBroker(lease=app.config.task_lease) if scheme_of(url) == "memory" else None
