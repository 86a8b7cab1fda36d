"""arq peer adapter: one asyncio Worker, async counter client made at worker startup."""

REQUIREMENTS = ["arq==0.28.0", "redis==5.3.1"]
SETTINGS = (
    "one arq.Worker in-process (handle_signals=True), max_jobs = --concurrency or arq's default "
    "10, arq defaults otherwise (poll_delay 0.5 s, queue_read_limit max(5*max_jobs, 100), "
    "results kept 1 h); roundtrip waits with `await job.result(timeout=10)` (polls every 0.5 s, "
    "arq's default)"
)
ASYNC = True

import argparse
import asyncio
import os
import sys
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.asyncio import Redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now  # noqa: E402

__all__ = ["make_worker"]


def make_worker(args: argparse.Namespace) -> Worker:
    """The arq worker whose ``noop`` job INCRs ``args.counter`` (after a sleep in mode sleep)."""

    async def noop(ctx: dict[str, Any]) -> None:
        if args.mode == "sleep":
            await asyncio.sleep(SLEEP_SECONDS)
        await ctx["counter_client"].incr(args.counter)

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["counter_client"] = Redis.from_url(args.redis)
        emit({"ready": True})

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await ctx["counter_client"].aclose()

    return Worker(
        functions=[func(noop, name="noop")],
        redis_settings=RedisSettings.from_dsn(args.redis),
        max_jobs=args.concurrency or 10,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=True,
    )


def worker(args: argparse.Namespace) -> None:
    """Run the worker until SIGTERM/SIGINT (arq's own graceful handling)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    make_worker(args).run()


async def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` jobs with ``await pool.enqueue_job("noop")``."""
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    start = now()
    for _ in range(args.n):
        await pool.enqueue_job("noop")
    elapsed = now() - start
    await pool.aclose()
    return elapsed


async def roundtrip(args: argparse.Namespace) -> list[float]:
    """``await (await pool.enqueue_job("noop")).result(timeout=10)`` ``args.n`` times."""
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    latencies = []
    for _ in range(args.n):
        start = now()
        job = await pool.enqueue_job("noop")
        await job.result(timeout=10)
        latencies.append((now() - start) * 1000)
    await pool.aclose()
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
