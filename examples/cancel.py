"""Cancel from outside: a queued task never runs; a running async task is cancelled; a running
sync task sees ``self.ctx.cancelled`` and stops.

Run it with ``python examples/cancel.py`` (the SQLite default, no server). The same works from
another process and from the command line: ``qtasks -A examples.cancel:app task cancel UUID``.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="cancel-example")


@app.task
async def crawl(site: str) -> str:
    try:
        await anyio.sleep(3600)
    finally:
        print(f"crawl({site}) cleaned up")
    return "crawled"


@app.task(echo=True)
def export(self: Any, rows: int) -> str:
    done = 0
    while done < rows:
        if self.ctx.cancelled:
            self.ctx.cancel(f"stopped after {done} rows")
        done += 1
        time.sleep(0.01)
    return f"exported {done} rows"


async def until_running(task: Any) -> None:
    while (await app.get(task.uuid)).status != "process":
        await anyio.sleep(0.01)


async def main() -> None:
    queued = await crawl.add_task("never.example")
    print(f"cancel queued: {await app.cancel(queued.uuid, 'changed my mind')}")
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        running = await crawl.add_task("example.org")
        rows = await export.add_task(1_000_000)
        await until_running(running)
        await until_running(rows)
        await running.cancel_async("user pressed stop")
        await rows.cancel_async()
        for task in (queued, running, rows):
            record = await app.wait_result(task.uuid, 10)
            print(f"{record.task_name}: {record.status}: {record.cancel_reason}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
