"""Worker process for bench/sqlite_throughput.py: one app's async tasks served on a SQLite file until SIGTERM.

Run by the benchmark as ``python bench/sqlite_worker_app.py URL APP_NAME CONCURRENCY``; the producer
imports ``make_app`` from here so both sides register the same tasks under the same names.
"""

from __future__ import annotations

import sys
import time

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.kernel.handles import AsyncTask


async def noop() -> None:
    return None


async def stamp(sent: float) -> float:
    """Seconds from the producer's ``time.time()`` at enqueue to the start of this task (same host clock)."""
    return time.time() - sent


def make_app(url: str, name: str) -> tuple[QueueTasks, AsyncTask, AsyncTask]:
    """The benchmark's app on ``url`` under ``name``, and its ``noop`` and ``stamp`` task handles."""
    app = QueueTasks(name=name, broker_url=url)
    return app, app.task(name="noop")(noop), app.task(name="stamp")(stamp)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: sqlite_worker_app.py URL APP_NAME CONCURRENCY", file=sys.stderr)
        return 2
    url, name, concurrency = argv
    app, _noop, _stamp = make_app(url, name)
    anyio.run(app.serve, int(concurrency))  # handles SIGINT/SIGTERM: drains, stops the components
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
