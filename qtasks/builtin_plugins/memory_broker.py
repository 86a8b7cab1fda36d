"""``memory://`` broker: one process's queue, ordered by priority then FIFO, with delays."""

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
from qtasks.kernel.model import Delivery, Envelope
from qtasks.kernel.urls import scheme_of

__all__ = ["MemoryBroker", "qtasks_make_broker"]


class MemoryBroker:
    """An in-process broker for tests and single-process apps.

    Claimed envelopes stay in flight until ``ack`` or ``requeue``; their delivery count grows
    with each claim. Nothing survives the process.
    """

    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Envelope]] = []
        self._delayed: list[tuple[float, int, Envelope]] = []
        self._in_flight: dict[int, Envelope] = {}
        self._deliveries: dict[str, int] = {}
        self._seq = itertools.count()
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

    def _push(self, envelope: Envelope) -> None:
        if envelope.not_before > time.time():
            heapq.heappush(self._delayed, (envelope.not_before, next(self._seq), envelope))
        else:
            heapq.heappush(self._ready, (envelope.priority, next(self._seq), envelope))

    async def enqueue(self, envelopes: Sequence[Envelope]) -> None:
        """Queue envelopes and wake the waiting claimers."""
        for envelope in envelopes:
            self._push(envelope)
        self._wake()

    def _take(self, max_count: int) -> list[Delivery]:
        if self._delayed:
            clock = time.time()
            while self._delayed and self._delayed[0][0] <= clock:
                _, seq, envelope = heapq.heappop(self._delayed)
                heapq.heappush(self._ready, (envelope.priority, seq, envelope))
        taken = []
        while self._ready and len(taken) < max_count:
            _, seq, envelope = heapq.heappop(self._ready)
            count = self._deliveries.get(envelope.uuid, 0) + 1
            self._deliveries[envelope.uuid] = count
            self._in_flight[seq] = envelope
            taken.append(Delivery(envelope=envelope, delivery_count=count, receipt=seq))
        return taken

    async def claim(self, worker_id: str, max_count: int, timeout: float) -> list[Delivery]:
        """Return up to ``max_count`` deliveries, waiting up to ``timeout`` seconds for the first."""
        await anyio.lowlevel.checkpoint()  # yield once per claim, as a network round trip would
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take(max_count)
            if taken:
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if self._delayed:
                remaining = min(remaining, max(self._delayed[0][0] - time.time(), 0.0))
            if self._wakeup is None:
                self._wakeup = anyio.Event()
            with anyio.move_on_after(remaining if remaining != math.inf else None):
                await self._wakeup.wait()

    async def ack(self, delivery: Delivery) -> None:
        """Forget the delivery."""
        envelope = self._in_flight.pop(delivery.receipt, None)
        if envelope is not None:
            self._deliveries.pop(envelope.uuid, None)

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Put the envelope back, claimable after ``delay`` seconds."""
        envelope = self._in_flight.pop(delivery.receipt, None)
        if envelope is None:
            return
        if delay > 0:
            envelope = attrs.evolve(envelope, not_before=time.time() + delay)
        self._push(envelope)
        self._wake()

    async def purge(self) -> int:
        """Drop every queued envelope (in-flight ones stay with their workers)."""
        count = len(self._ready) + len(self._delayed)
        self._ready.clear()
        self._delayed.clear()
        return count

    def depth(self) -> int:
        """Envelopes waiting to be claimed (ready and delayed)."""
        return len(self._ready) + len(self._delayed)


@hookimpl(trylast=True)
def qtasks_make_broker(app: Any, url: str) -> MemoryBroker | None:
    """Serve ``memory://`` URLs."""
    return MemoryBroker() if scheme_of(url) == "memory" else None
