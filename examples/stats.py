"""Stats: count an app's queue, its tasks by status, its throughput and its workers.

Run it with ``python examples/stats.py`` (the SQLite default, no server). A worker in this process
finishes a few tasks; then, with the worker stopped, a few more are queued, and the script prints
what ``qtasks -A stats:app top`` would show for the app.
"""

from __future__ import annotations

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.stats import AsyncStats

app = QueueTasks(name="stats-example")


@app.task
async def resize(width: int) -> int:
    """Halve an image width."""
    return width // 2


@app.task
async def upload(path: str) -> None:
    """Fail, as an upload to a read-only bucket would."""
    raise PermissionError(f"{path}: the bucket is read-only")


async def main() -> None:
    await app.flush_all()  # start from an empty queue in the SQLite file, whatever ran before
    stats = await AsyncStats(app).inspect()
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        for width in (640, 800, 1024):
            await resize.add_task(width, timeout=30)
        await upload.add_task("cat.png", timeout=30)
        workers = await stats.workers()
        print("live workers:", len(workers), "| concurrency:", workers[0].concurrency)
        await app.stop()
    await resize.add_task(320)
    await resize.add_task(4096, priority=5)
    await resize.add_task(1920, countdown=3600)  # delayed by an hour
    queues = await stats.queues()
    print(f"queue: ready by priority {dict(queues.ready)} | delayed {queues.delayed} | leased {queues.leased} | dead {queues.dead}")
    statuses = await stats.statuses()
    print("records:", ", ".join(f"{status} {count}" for status, count in statuses.items() if count))
    throughput = await stats.throughput()
    print(f"finished in the last {throughput.window:g}s: {dict(throughput.finished)} (total {throughput.total})")
    await app.close()


if __name__ == "__main__":
    anyio.run(main)
