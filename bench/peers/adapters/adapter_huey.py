"""Huey peer adapter: RedisHuey (blocking dequeue), thread workers in one consumer process."""

REQUIREMENTS = ["huey==3.5.4", "redis==8.1.0"]
SETTINGS = (
    "one consumer process (huey.create_consumer().run() in-process), worker_type thread "
    "(Huey's default), workers = --concurrency or Huey's default 1, RedisHuey defaults "
    "(blocking BRPOP dequeue, results stored) plus store_none=True (else the None a noop returns "
    "is not stored and Result.get never sees it finish), graceful_signal TERM; roundtrip waits with "
    "Result.get(blocking=True, timeout=10)"
)
ASYNC = False
CONCURRENCY = {"noop": 0, "sleep": 0}  # 0: the framework's own default (see SETTINGS)

import argparse
import os
import sys
import time

import redis
from huey import RedisHuey
from huey.api import TaskWrapper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now  # noqa: E402

__all__ = ["make_task"]


def make_task(redis_url: str, counter: str = "", mode: str = "noop") -> TaskWrapper:
    """The ``noop`` task of a RedisHuey at ``redis_url`` (INCR ``counter`` when it runs)."""
    huey = RedisHuey("qbench", url=redis_url, store_none=True)  # noop returns None
    client = redis.Redis.from_url(redis_url)

    @huey.task(name="noop")
    def noop() -> None:
        if mode == "sleep":
            time.sleep(SLEEP_SECONDS)
        client.incr(counter)

    return noop


def worker(args: argparse.Namespace) -> None:
    """Run the consumer until SIGTERM (graceful) or SIGINT."""
    noop = make_task(args.redis, args.counter, args.mode)
    consumer = noop.huey.create_consumer(
        workers=args.concurrency or 1, worker_type="thread", graceful_signal="TERM",
    )
    emit({"ready": True})
    consumer.run()


def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` tasks by calling ``noop()``."""
    noop = make_task(args.redis)
    start = now()
    for _ in range(args.n):
        noop()
    return now() - start


def roundtrip(args: argparse.Namespace) -> list[float]:
    """``noop().get(blocking=True, timeout=10)`` ``args.n`` times."""
    noop = make_task(args.redis)
    latencies = []
    for _ in range(args.n):
        start = now()
        noop().get(blocking=True, timeout=10)
        latencies.append((now() - start) * 1000)
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
