"""Celery peer adapter: Redis broker, Redis result backend, prefork pool."""

REQUIREMENTS = ["celery[redis]==5.7.0", "redis==8.1.0"]
SETTINGS = (
    "worker_main in-process, prefork pool, concurrency = --concurrency or Celery's default "
    "(CPU count), default prefetch multiplier 4, Redis result backend (results stored: "
    "Celery's default ignore_result=False); roundtrip waits with AsyncResult.get(timeout=10)"
)
ASYNC = False
CONCURRENCY = {"noop": 0, "sleep": 0}  # 0: the framework's own default (see SETTINGS)

import argparse
import os
import sys
import time

import redis
from celery import Celery, Task
from celery.signals import worker_ready

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now  # noqa: E402

__all__ = ["make_app"]


def make_app(redis_url: str, counter: str = "", mode: str = "noop") -> tuple[Celery, Task]:
    """The Celery app on ``redis_url`` and its ``noop`` task (INCR ``counter`` when it runs)."""
    app = Celery("qbench", broker=redis_url, backend=redis_url)
    app.conf.broker_connection_retry_on_startup = True
    app.conf.worker_hijack_root_logger = False
    app.conf.worker_redirect_stdouts = False
    client = redis.Redis.from_url(redis_url)  # one per process: redis-py reconnects after fork

    @app.task(name="noop")
    def noop() -> None:
        if mode == "sleep":
            time.sleep(SLEEP_SECONDS)
        client.incr(counter)

    return app, noop


def worker(args: argparse.Namespace) -> None:
    """Run a prefork worker in the foreground; SIGTERM is Celery's warm shutdown."""
    app, _ = make_app(args.redis, args.counter, args.mode)
    worker_ready.connect(lambda **kwargs: emit({"ready": True}), weak=False)
    argv = ["worker", "--pool=prefork", "--loglevel=WARNING"]
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    app.worker_main(argv)


def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` tasks with ``noop.delay()``."""
    _, noop = make_app(args.redis)
    start = now()
    for _ in range(args.n):
        noop.delay()
    return now() - start


def roundtrip(args: argparse.Namespace) -> list[float]:
    """``noop.delay().get(timeout=10)`` ``args.n`` times."""
    _, noop = make_app(args.redis)
    latencies = []
    for _ in range(args.n):
        start = now()
        noop.delay().get(timeout=10)
        latencies.append((now() - start) * 1000)
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
