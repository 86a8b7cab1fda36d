"""Worker process for bench/redis_throughput.py: one app's async no-op task served on Redis until SIGTERM.

Run by the benchmark as ``python bench/redis_worker_app.py URL APP_NAME CONCURRENCY``; the producer
imports ``make_app`` from here so both sides register the same task under the same name.
"""

from __future__ import annotations

import sys

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.kernel.handles import AsyncTask


async def noop() -> None:
    return None


def make_app(url: str, name: str) -> tuple[QueueTasks, AsyncTask]:
    """The benchmark's app on ``url`` under ``name``, and its ``noop`` task handle."""
    app = QueueTasks(name=name, broker_url=url)
    return app, app.task(name="noop")(noop)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: redis_worker_app.py URL APP_NAME CONCURRENCY", file=sys.stderr)
        return 2
    url, name, concurrency = argv
    app, _noop = make_app(url, name)
    anyio.run(app.serve, int(concurrency))  # handles SIGINT/SIGTERM: drains, stops the components
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
