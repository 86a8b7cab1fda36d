"""Unique tasks: ``add_task(..., unique_key=k)`` queues one task per key while it is queued or running.

Run it with ``python examples/unique.py`` (the SQLite default, no server: producers in other
processes on the same file see the same keys). A rebuild asked for twice gets one task, another
key gets its own, and once the task has ended the key is free for a new one.
"""

from __future__ import annotations

import threading

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="unique-example")
started = threading.Event()
release = threading.Event()


@app.task
def rebuild(section: str) -> str:
    """Rebuild a section's index (a sync task, in a worker thread); the first run waits until
    the script has asked again."""
    started.set()
    release.wait(30)
    return f"{section} rebuilt"


async def main() -> None:
    first = await rebuild.add_task("docs", unique_key="rebuild:docs")
    second = await rebuild.add_task("docs", unique_key="rebuild:docs")
    print("same key, same task:", second.uuid == first.uuid)
    other = await rebuild.add_task("blog", unique_key="rebuild:blog")
    print("another key, another task:", other.uuid != first.uuid)
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 4, False)  # a worker in this process, no signal handling
        await anyio.to_thread.run_sync(started.wait, 30)
        running = await rebuild.add_task("docs", unique_key="rebuild:docs")
        print("while it runs, same task:", running.uuid == first.uuid)
        release.set()
        print((await app.wait_result(first.uuid, 30)).returning)
        third = await rebuild.add_task("docs", unique_key="rebuild:docs", timeout=30)
        print("after it ended, a new task:", third.uuid != first.uuid, "|", third.returning)
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
