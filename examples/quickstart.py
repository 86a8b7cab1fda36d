"""Quickstart: define tasks, run a worker and wait for results, all in one process, no server.

The app has no broker URL, so it uses the embedded default: the SQLite file ``qtasks.sqlite3``
in the working directory (see examples/two_terminals.py for a worker in another process).
"""

from __future__ import annotations

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="quickstart")  # no URL: the SQLite file qtasks.sqlite3 in the working directory


@app.task
async def add(x: int, y: int) -> int:
    """An async task: runs on the worker's event loop."""
    return x + y


@app.task(retry=2)
def word_count(text: str) -> int:
    """A sync task: runs in a worker thread, so it never blocks the loop."""
    return len(text.split())


@app.task(generate_handler=lambda value: value * 10)
async def progress(steps: int):
    """A generator task: each value goes through generate_handler; the result is the list."""
    for step in range(steps):
        yield step


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 4, False)  # a worker with 4 slots, no signal handling
        queued = await add.add_task(2, 3)  # returns at once: the stored record, status "new"
        print("queued:", queued.task_name, queued.status)
        done = await app.wait_result(queued.uuid, timeout=5)
        print("add(2, 3) ->", done.status, done.returning)
        print("word_count ->", (await word_count.add_task("to be or not to be", timeout=5)).returning)
        print("progress ->", (await progress.add_task(3, timeout=5)).returning)
        failed = await app.add_task("no_such_task", timeout=5)
        print("unknown task ->", failed.status + ":", failed.traceback)
        await app.stop()  # drain and stop the worker


if __name__ == "__main__":
    anyio.run(main)
