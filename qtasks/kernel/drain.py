"""Waiting for a queue to drain: what an app's queue still holds, polled until it holds nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import anyio

from qtasks.kernel.protocols import QueueStats

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["POLL_FIRST", "POLL_MAX", "queue_left", "poll_until_empty", "describe_left"]

POLL_FIRST = 0.002  # seconds between the first two looks
POLL_MAX = 0.05  # the looks slow down to this interval


async def queue_left(app: AsyncQueueTasks) -> dict[str, int]:
    """What ``app``'s queue still holds, by state, leaving out the states with none.

    With a broker that counts its queue (``QueueStats``): ``ready``, ``delayed`` and ``leased``
    (claimed by a worker: running or about to run); dead letters are final and not counted.
    Otherwise: ``queued`` (the broker's ``depth()``) and ``running`` (tasks this process's
    worker runs).
    """
    broker = app.broker
    if isinstance(broker, QueueStats):
        counts = await broker.queue_counts()
        left = {"ready": counts.ready_total, "delayed": counts.delayed, "leased": counts.leased}
    else:
        depth: Callable[[], Awaitable[int]] | None = getattr(broker, "depth", None)
        left = {"queued": await depth() if depth is not None else 0, "running": len(app.worker.running) if app.worker is not None else 0}
    return {state: count for state, count in left.items() if count}


async def poll_until_empty(measure: Callable[[], Awaitable[Mapping[str, int]]], timeout: float | None) -> Mapping[str, int]:
    """Call ``measure`` until it returns an empty mapping, looking more slowly as time goes by.

    Args:
        measure: Returns what is left, by name (empty: nothing).
        timeout: Give up after this many seconds; None waits for ever.

    Returns:
        An empty mapping once nothing is left; what was left when the time ran out, otherwise.
    """
    left = await measure()
    interval = POLL_FIRST
    with anyio.move_on_after(timeout):
        while left:
            await anyio.sleep(interval)
            interval = min(interval * 2, POLL_MAX)
            left = await measure()
    return left


def describe_left(left: Mapping[str, int]) -> str:
    """``{"ready": 2, "leased": 1}`` as ``"2 ready, 1 leased"``."""
    return ", ".join(f"{count} {state}" for state, count in left.items())
