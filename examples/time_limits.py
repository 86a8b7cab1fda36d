"""Time limits: ``max_time`` ends a task that runs too long, and the worker goes on.

Run it with ``python examples/time_limits.py`` (the SQLite default, no server). An async task is
cancelled at its limit; a sync task is recorded ``error`` at its limit while its thread finishes
in the background, and its late result is dropped.
"""

from __future__ import annotations

import time

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="time-limits-example")


@app.task(max_time=0.5)
async def crawl(pages: int) -> int:
    """An async task: cancelled at 0.5 s (its ``finally`` blocks still run)."""
    for page in range(pages):
        await anyio.sleep(0.2)
    return pages


@app.task(max_time=0.5)
def render(seconds: float) -> str:
    """A sync task: its thread cannot be interrupted, so the record says error at 0.5 s."""
    time.sleep(seconds)
    return "rendered"


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        for name, record in [
            ("crawl(2)", await crawl.add_task(2, timeout=10)),
            ("crawl(10)", await crawl.add_task(10, timeout=10)),
            ("render(0.1)", await render.add_task(0.1, timeout=10)),
            ("render(1.0)", await render.add_task(1.0, timeout=10)),
        ]:
            outcome = record.returning if record.status == "success" else record.traceback.strip().splitlines()[-1]
            print(f"{name}: {record.status}: {outcome}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
