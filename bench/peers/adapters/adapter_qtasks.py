"""Peer-benchmark adapter for QTasks (this repository): an async app on Redis, served like ``qtasks run -c N``."""

from __future__ import annotations

REQUIREMENTS = ["<repo>"]
SETTINGS = ("async app (`qtasks.asyncio.QueueTasks`) on the Redis broker, one worker process "
            "(`app.serve(N)`, as `qtasks run -c N`): -c 10 for noop, -c 100 for sleep; default plugins; "
            "redis-py with hiredis when installed")
ASYNC = True
CONCURRENCY = {"noop": 10, "sleep": 100}
EXTRA_PHASES = ["batch", "two_processes"]  # QTasks only: batch enqueue, 2 worker processes

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

__all__ = ["main"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the -I harness leaves it out
from peer_cli import Counter  # noqa: E402

APP_NAME = "peersbench"


def make_app(url: str, counter: Counter | None = None) -> tuple[Any, Any, Any]:
    """The app on ``url`` with its ``noop`` and ``sleeper`` tasks (both INCR the counter)."""
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

    return app, noop, sleeper


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import anyio

    app, _noop, _sleeper = make_app(args.redis, Counter(args.redis, args.counter))
    print(json.dumps({"ready": True}), flush=True)
    anyio.run(app.serve, args.concurrency)  # SIGTERM/SIGINT: drains, stops the components
    return {"stopped": True}


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    app, noop, sleeper = make_app(args.redis)
    task = sleeper if args.mode == "sleep" else noop
    await app.start()
    try:
        started = time.perf_counter()
        if args.batch:
            await task.add_tasks([()] * args.n)
        else:
            for _ in range(args.n):
                await task.add_task()
        return {"enqueue_seconds": time.perf_counter() - started}
    finally:
        await app.stop()


async def roundtrip(args: argparse.Namespace) -> dict[str, Any]:
    app, noop, _sleeper = make_app(args.redis)
    await app.start()
    try:
        latencies = []
        for _ in range(args.n):
            started = time.perf_counter()
            record = await noop.add_task(timeout=30)
            if record is None:
                raise RuntimeError("a round-trip task did not finish within 30 s")
            latencies.append((time.perf_counter() - started) * 1000)
        return {"latencies_ms": latencies}
    finally:
        await app.stop()


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
        result = worker(args)
    else:
        import anyio

        result = anyio.run(produce if args.command == "produce" else roundtrip, args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
