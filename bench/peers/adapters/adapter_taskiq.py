"""taskiq peer adapter: taskiq-redis RedisStreamBroker + RedisAsyncResultBackend, one receiver."""

REQUIREMENTS = ["taskiq==0.13.0", "taskiq-redis==1.2.4", "redis==8.1.0"]
SETTINGS = (
    "one process running taskiq.api.run_receiver_task (taskiq's programmatic worker), "
    "max_async_tasks = --concurrency or taskiq's default 100, RedisStreamBroker (taskiq-redis's "
    "broker with acknowledgements) with RedisAsyncResultBackend (every result stored); roundtrip "
    "waits with `await task.wait_result(timeout=10)` (polls every 0.2 s, taskiq's default)"
)
ASYNC = True

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from redis.asyncio import Redis
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask
from taskiq.api import run_receiver_task
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now  # noqa: E402

__all__ = ["make_task"]


def make_task(
    redis_url: str, counter: str = "", mode: str = "noop", client: Any = None,
) -> AsyncTaskiqDecoratedTask:
    """The ``noop`` task on a Redis stream broker (INCR ``counter`` with ``client`` when it runs)."""
    broker: AsyncBroker = RedisStreamBroker(redis_url).with_result_backend(
        RedisAsyncResultBackend(redis_url),
    )

    @broker.task(task_name="noop")
    async def noop() -> None:
        if mode == "sleep":
            await asyncio.sleep(SLEEP_SECONDS)
        await client.incr(counter)

    return noop


async def worker(args: argparse.Namespace) -> None:
    """Run one receiver until SIGTERM/SIGINT."""
    client = Redis.from_url(args.redis)
    noop = make_task(args.redis, args.counter, args.mode, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await noop.broker.startup()
    receiver = asyncio.create_task(
        run_receiver_task(noop.broker, max_async_tasks=args.concurrency or 100),
    )
    emit({"ready": True})
    await stop.wait()
    receiver.cancel()
    await asyncio.gather(receiver, return_exceptions=True)
    await noop.broker.shutdown()
    await client.aclose()


async def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` tasks with ``await noop.kiq()``."""
    noop = make_task(args.redis)
    await noop.broker.startup()
    start = now()
    for _ in range(args.n):
        await noop.kiq()
    elapsed = now() - start
    await noop.broker.shutdown()
    return elapsed


async def roundtrip(args: argparse.Namespace) -> list[float]:
    """``await (await noop.kiq()).wait_result(timeout=10)`` ``args.n`` times."""
    noop = make_task(args.redis)
    await noop.broker.startup()
    latencies = []
    for _ in range(args.n):
        start = now()
        task = await noop.kiq()
        result = await task.wait_result(timeout=10)
        if result.is_err:
            raise RuntimeError(f"taskiq: task failed: {result.error!r}")
        latencies.append((now() - start) * 1000)
    await noop.broker.shutdown()
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
