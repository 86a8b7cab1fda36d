"""What each task-feature plugin costs a no-op task on the worker: ``process_delivery`` with one
plugin disabled at a time, on the memory broker.

Not a test: it prints figures. Run from the repository root::

    .venv/bin/python bench/feature_costs.py              # 20,000 deliveries per case
    .venv/bin/python bench/feature_costs.py --tasks 5000

For each case, N no-op ``async def`` tasks are enqueued, claimed in one batch, and run through
``qtasks.kernel.lifecycle.process_delivery`` directly (no worker scheduling); the figure is the
fastest slice of 200 deliveries, in µs per delivery (the least noisy number on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import time

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.kernel import lifecycle
from qtasks.kernel.worker import Worker

FEATURES = ("cancel", "time_limits", "depends", "state", "typed_args", "generators", "unique", "context", "retries")
SLICE = 200


async def noop() -> None:
    """The task: nothing."""


async def per_delivery(disabled: tuple[str, ...], tasks: int) -> float:
    """µs per ``process_delivery`` of a no-op task with ``disabled`` plugins, best slice."""
    app = QueueTasks(name="feature-costs", broker_url="memory://", disable_plugins=list(disabled))
    task = app.task(name="noop")(noop)
    await app.start()
    worker = Worker(app, 10)
    for component in ("broker", "storage", "serializer", "steps"):
        setattr(worker, component, getattr(app, component))
    for _ in range(tasks):
        await task.add_task()
    deliveries = await app.broker.claim("bench", tasks, 0)
    best = float("inf")
    for start in range(0, len(deliveries), SLICE):
        began = time.perf_counter()
        for delivery in deliveries[start:start + SLICE]:
            await lifecycle.process_delivery(worker, delivery)
        best = min(best, (time.perf_counter() - began) / SLICE)
    await app.close()
    return best * 1e6


async def run(tasks: int) -> None:
    """Print every case."""
    everything = await per_delivery((), tasks)
    print(f"all default plugins: {everything:6.2f} µs per delivery")
    for feature in FEATURES:
        without = await per_delivery((feature,), tasks)
        print(f"  without {feature:<12} {without:6.2f} µs  (it costs {everything - without:5.2f})")
    bare = await per_delivery(FEATURES, tasks)
    print(f"without all of them: {bare:6.2f} µs  (together they cost {everything - bare:5.2f})")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000, help="deliveries per case (default 20,000)")
    args = parser.parse_args()
    os.environ.setdefault("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "1")
    print(f"command: .venv/bin/python bench/feature_costs.py --tasks {args.tasks}")
    print(f"machine: {os.cpu_count()} CPU(s); load {os.getloadavg()[0]:.2f} at start")
    anyio.run(run, args.tasks)


if __name__ == "__main__":
    main()
