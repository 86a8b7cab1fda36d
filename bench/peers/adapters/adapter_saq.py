"""SAQ peer adapter: one asyncio Worker on a Redis queue, async counter client made at startup."""

REQUIREMENTS = ["saq==0.26.4", "redis==7.4.1", "typing_extensions==4.16.0"]  # saq imports it undeclared
SETTINGS = (
    "one saq.Worker in-process (await worker.start(), SAQ's own SIGTERM/SIGINT handling), "
    "concurrency = --concurrency or SAQ's default 10, SAQ defaults otherwise (Redis queue "
    "'default', blocking dequeue); roundtrip waits with `await job.refresh(until_complete=0.1)` in a loop (SAQ's pub/sub job-update wait, re-armed "
    "every 0.1 s because a job that completes before the subscription is never announced; "
    "queue.apply polls every 0.5 s and sleeps once more after the last poll: ~1 s per task)"
)
ASYNC = True

import argparse
import asyncio
import os
import sys
from typing import Any

from redis.asyncio import Redis
from saq import Queue, Worker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now  # noqa: E402

__all__ = ["make_worker"]


def make_worker(args: argparse.Namespace) -> Worker:
    """The SAQ worker whose ``noop`` job INCRs ``args.counter`` (after a sleep in mode sleep)."""

    async def noop(ctx: dict[str, Any]) -> None:
        if args.mode == "sleep":
            await asyncio.sleep(SLEEP_SECONDS)
        await ctx["counter_client"].incr(args.counter)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["counter_client"] = Redis.from_url(args.redis)
        emit({"ready": True})

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["counter_client"].aclose()

    return Worker(
        Queue.from_url(args.redis),
        functions=[("noop", noop)],
        concurrency=args.concurrency or 10,
        startup=startup,
        shutdown=shutdown,
    )


async def worker(args: argparse.Namespace) -> None:
    """Run the worker until SIGTERM/SIGINT."""
    saq_worker = make_worker(args)
    await saq_worker.queue.connect()
    await saq_worker.start()
    await saq_worker.queue.disconnect()


async def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` jobs with ``await queue.enqueue("noop")``."""
    queue = Queue.from_url(args.redis)
    await queue.connect()
    start = now()
    for _ in range(args.n):
        await queue.enqueue("noop")
    elapsed = now() - start
    await queue.disconnect()
    return elapsed


async def roundtrip(args: argparse.Namespace) -> list[float]:
    """Enqueue ``noop`` and ``await job.refresh(until_complete=10)``, ``args.n`` times."""
    queue = Queue.from_url(args.redis)
    await queue.connect()
    latencies = []
    for _ in range(args.n):
        start = now()
        job = await queue.enqueue("noop")
        deadline = now() + 10
        while True:  # a job that completes between refresh's read and its subscription is never
            try:     # announced to it: listen in short windows, each starting with a fresh read
                await job.refresh(until_complete=0.1)
                break
            except asyncio.TimeoutError:
                if now() > deadline:
                    raise
        if job.status != "complete":
            raise RuntimeError(f"saq: job ended {job.status}")
        latencies.append((now() - start) * 1000)
    await queue.disconnect()
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
