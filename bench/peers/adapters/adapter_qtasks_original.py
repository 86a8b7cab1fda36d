"""Peer-benchmark adapter for the published QTasks 1.7.3 (PyPI ``qtasks``): its async app on Redis, ``run_forever``."""

from __future__ import annotations

REQUIREMENTS = ["qtasks==1.7.3"]
SETTINGS = ("async app (`qtasks.asyncio.QueueTasks(broker_url=...)`), `app.run_forever()` with its 4 consumer "
            "coroutines; config.max_tasks_process = 10 for noop, 100 for sleep; config.result_time_interval "
            "= 0.01 s for the round trips (its default, 1 s, makes each one last about a second)")
ASYNC = True
CONCURRENCY = {"noop": 10, "sleep": 100}

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

__all__ = ["main"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the -I harness leaves it out
from peer_cli import Counter  # noqa: E402

APP_NAME = "peersbench_original"


def make_app(url: str, counter: Counter | None = None) -> Any:
    """The 1.7.3 async app on ``url`` with its ``noop`` and ``sleeper`` tasks (both INCR the counter)."""
    from qtasks.asyncio import QueueTasks

    app = QueueTasks(name=APP_NAME, broker_url=url)

    @app.task(name="noop")
    async def noop() -> None:
        if counter is not None:
            await counter.incr()

    @app.task(name="sleeper")
    async def sleeper() -> None:
        await asyncio.sleep(0.01)
        if counter is not None:
            await counter.incr()

    return app


def worker(args: argparse.Namespace) -> None:
    app = make_app(args.redis, Counter(args.redis, args.counter))
    app.config.max_tasks_process = args.concurrency
    # 1.7.3 has no SIGTERM handling: end at once (the harness has already read the counter).
    signal.signal(signal.SIGTERM, lambda *_: (print(json.dumps({"stopped": True}), flush=True), os._exit(0)))
    print(json.dumps({"ready": True}), flush=True)
    app.run_forever()


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    app = make_app(args.redis)
    name = "sleeper" if args.mode == "sleep" else "noop"
    started = time.perf_counter()
    for _ in range(args.n):
        await app.add_task(name)
    return {"enqueue_seconds": time.perf_counter() - started}


async def roundtrip(args: argparse.Namespace) -> dict[str, Any]:
    app = make_app(args.redis)
    app.config.result_time_interval = 0.01
    latencies = []
    for _ in range(args.n):
        started = time.perf_counter()
        record = await app.add_task("noop", timeout=30)
        if record is None:
            raise RuntimeError("a round-trip task did not finish within 30 s")
        latencies.append((time.perf_counter() - started) * 1000)
    return {"latencies_ms": latencies}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    w = commands.add_parser("worker")
    w.add_argument("--redis", required=True)
    w.add_argument("--counter", required=True)
    w.add_argument("--mode", choices=["noop", "sleep"], default="noop")
    w.add_argument("--concurrency", type=int, default=10)
    p = commands.add_parser("produce")
    p.add_argument("--redis", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--mode", choices=["noop", "sleep"], default="noop")
    p.add_argument("--batch", action="store_true")
    r = commands.add_parser("roundtrip")
    r.add_argument("--redis", required=True)
    r.add_argument("--n", type=int, default=200)
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker(args)
        return 0
    if getattr(args, "batch", False):
        print("qtasks 1.7.3 has no batch enqueue", file=sys.stderr)
        return 2
    result = asyncio.run(produce(args) if args.command == "produce" else roundtrip(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
