"""Dramatiq peer adapter: RedisBroker, Results middleware on a RedisBackend, one worker process."""

REQUIREMENTS = ["dramatiq[redis]==2.2.1", "redis==8.1.0"]
SETTINGS = (
    "one process, dramatiq.Worker in-process with worker_threads = --concurrency or Dramatiq's "
    "default 8 (the CLI default per process), default middleware + Results(RedisBackend); results "
    "stored only for roundtrip messages (send_with_options(store_results=True), Dramatiq's default "
    "is not to store); roundtrip waits with message.get_result(block=True, timeout=10000)"
)
ASYNC = False
CONCURRENCY = {"noop": 0, "sleep": 0}  # 0: the framework's own default (see SETTINGS)

import argparse
import os
import sys
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now, stop_signals  # noqa: E402

__all__ = ["make_actor"]


def make_actor(redis_url: str, counter: str = "", mode: str = "noop") -> dramatiq.Actor:
    """The ``noop`` actor on a Redis broker at ``redis_url`` (INCR ``counter`` when it runs)."""
    broker = RedisBroker(url=redis_url)
    broker.add_middleware(Results(backend=RedisBackend(client=redis.Redis.from_url(redis_url))))
    dramatiq.set_broker(broker)  # Message.get_result looks the results backend up here
    client = redis.Redis.from_url(redis_url)

    @dramatiq.actor(actor_name="noop", broker=broker)
    def noop() -> None:
        if mode == "sleep":
            time.sleep(SLEEP_SECONDS)
        client.incr(counter)

    return noop


def worker(args: argparse.Namespace) -> None:
    """Run one worker process until SIGTERM/SIGINT."""
    noop = make_actor(args.redis, args.counter, args.mode)
    stop = stop_signals()
    threads = args.concurrency or 8
    dramatiq_worker = dramatiq.Worker(noop.broker, worker_threads=threads)
    dramatiq_worker.start()
    emit({"ready": True})
    stop.wait()
    dramatiq_worker.stop()
    noop.broker.close()


def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` tasks with ``noop.send()``."""
    noop = make_actor(args.redis)
    start = now()
    for _ in range(args.n):
        noop.send()
    return now() - start


def roundtrip(args: argparse.Namespace) -> list[float]:
    """``send_with_options(store_results=True).get_result(block=True)`` ``args.n`` times."""
    noop = make_actor(args.redis)
    latencies = []
    for _ in range(args.n):
        start = now()
        noop.send_with_options(store_results=True).get_result(block=True, timeout=10_000)
        latencies.append((now() - start) * 1000)
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
