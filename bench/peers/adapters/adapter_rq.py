"""RQ peer adapter: the default forking rq.Worker (a WorkerPool of them above concurrency 1)."""

REQUIREMENTS = ["rq==3.0.0", "redis==8.1.0"]
SETTINGS = (
    "RQ's default rq.Worker (forks a work horse per job, RQ's documented model) run in-process, "
    "one job at a time; --concurrency N > 1 runs rq.WorkerPool(num_workers=N) (forked workers "
    "in the same process tree); default queue, results stored (RQ default result_ttl 500 s); "
    "roundtrip waits with job.latest_result(timeout=10) (blocking XREAD on the job's result stream)"
)
ASYNC = False
CONCURRENCY = {"noop": 0, "sleep": 0}  # 0: the framework's own default (see SETTINGS)

import argparse
import importlib
import logging
import os
import sys
import time

import redis
from rq import Queue, Worker
from rq.worker_pool import WorkerPool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cli import SLEEP_SECONDS, Commands, emit, main, now  # noqa: E402

__all__ = ["noop"]

_clients: dict[int, redis.Redis] = {}
"""The counter client of each process (pid); RQ's default Worker runs each job in a fresh fork."""


def noop() -> None:
    """The task: INCR $QBENCH_COUNTER (after a short sleep when $QBENCH_MODE is sleep)."""
    if os.environ["QBENCH_MODE"] == "sleep":
        time.sleep(SLEEP_SECONDS)
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients.setdefault(os.getpid(), redis.Redis.from_url(os.environ["QBENCH_REDIS"]))
    client.incr(os.environ["QBENCH_COUNTER"])


def _task_function():
    """``noop`` as imported from the module ``adapter_rq`` (not ``__main__``), the name workers import."""
    return importlib.import_module("adapter_rq").noop


def worker(args: argparse.Namespace) -> None:
    """Run the worker (or pool) until SIGTERM/SIGINT (warm shutdown)."""
    os.environ.update(QBENCH_REDIS=args.redis, QBENCH_COUNTER=args.counter, QBENCH_MODE=args.mode)
    connection = redis.Redis.from_url(args.redis)
    emit({"ready": True})
    if args.concurrency > 1:
        pool = WorkerPool(["default"], connection=connection, num_workers=args.concurrency)
        pool.start(logging_level="WARNING")
        return
    Worker(["default"], connection=connection).work(logging_level="WARNING")
    logging.shutdown()


def produce(args: argparse.Namespace) -> float:
    """Enqueue ``args.n`` jobs with ``queue.enqueue(noop)``."""
    queue = Queue("default", connection=redis.Redis.from_url(args.redis))
    task = _task_function()
    start = now()
    for _ in range(args.n):
        queue.enqueue(task)
    return now() - start


def roundtrip(args: argparse.Namespace) -> list[float]:
    """``queue.enqueue(noop).latest_result(timeout=10)`` ``args.n`` times."""
    queue = Queue("default", connection=redis.Redis.from_url(args.redis))
    task = _task_function()
    latencies = []
    for _ in range(args.n):
        start = now()
        result = queue.enqueue(task).latest_result(timeout=10)
        if result is None:
            raise TimeoutError("rq: no result within 10 s")
        latencies.append((now() - start) * 1000)
    return latencies


if __name__ == "__main__":
    sys.exit(main(Commands(worker, produce, roundtrip)))
