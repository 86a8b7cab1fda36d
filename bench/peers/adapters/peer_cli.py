"""Shared command line of the peer adapters (stdlib only: it runs in every framework's venv)."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Union

__all__ = [
    "SLEEP_SECONDS",
    "Counter",
    "Commands",
    "emit",
    "main",
    "now",
    "stop_signals",
]

SLEEP_SECONDS = 0.01
"""What a task sleeps first in mode sleep."""

MaybeAwaitable = Union[Any, Awaitable[Any]]
Command = Callable[[argparse.Namespace], MaybeAwaitable]


class Commands:
    """The three commands an adapter implements; each may be sync or async.

    Args:
        worker: runs one worker in the foreground until SIGTERM/SIGINT.
        produce: enqueues ``args.n`` tasks and returns the seconds the loop took.
        roundtrip: returns the per-task enqueue-to-result latencies in ms.
    """

    def __init__(self, worker: Command, produce: Command, roundtrip: Command) -> None:
        self.worker = worker
        self.produce = produce
        self.roundtrip = roundtrip


def emit(payload: dict[str, Any]) -> None:
    """Print one JSON object on its own line and flush it."""
    print(json.dumps(payload), flush=True)


def stop_signals() -> threading.Event:
    """Install SIGTERM/SIGINT handlers that set (and return) an event."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the adapter command line of the peers interface."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--redis", required=True)
    worker.add_argument("--counter", required=True)
    worker.add_argument("--mode", choices=["noop", "sleep"], default="noop")
    worker.add_argument(
        "--concurrency", type=int, default=0,
        help="0 (default): the framework's own default/recommended concurrency",
    )
    produce = sub.add_parser("produce")
    produce.add_argument("--redis", required=True)
    produce.add_argument("--n", type=int, required=True)
    produce.add_argument("--mode", choices=["noop", "sleep"], default="noop")
    produce.add_argument("--batch", action="store_true")
    roundtrip = sub.add_parser("roundtrip")
    roundtrip.add_argument("--redis", required=True)
    roundtrip.add_argument("--n", type=int, required=True)
    return parser.parse_args(argv)


def _call(command: Command, args: argparse.Namespace) -> Any:
    result = command(args)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def main(commands: Commands, argv: list[str] | None = None) -> int:
    """Run the command given on the command line; returns the exit code."""
    args = parse_args(argv)
    if args.command == "worker":
        _call(commands.worker, args)
        return 0
    if args.command == "produce":
        if args.batch:
            print("--batch is not supported by this framework", file=sys.stderr)
            return 2
        emit({"enqueue_seconds": _call(commands.produce, args)})
        return 0
    latencies = _call(commands.roundtrip, args)
    emit({"latencies_ms": latencies})
    return 0


def now() -> float:
    """The clock used for all timings."""
    return time.perf_counter()


class Counter:
    """The shared completion counter: one async Redis client per worker process, made on first use."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key, self.client = url, key, None

    async def incr(self) -> None:
        if self.client is None:
            import redis.asyncio as redis_asyncio

            self.client = redis_asyncio.from_url(self.url)
        await self.client.incr(self.key)
