"""Run N no-op async tasks once through the memory broker, for counting instructions.

Steal and noise cannot change an instruction count, so this is the repeatable kernel figure on a
shared machine. Per-task cost = the difference between two N, divided by their difference::

    for n in 1000 3000 5000; do
      valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n .venv/bin/python bench/kernel_count.py $n 2>&1 | grep refs
    done
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from qtasks import hookimpl
from qtasks.asyncio import QueueTasks


class Completion:
    """Sets ``done`` once ``expected`` final records are stored."""

    name = "completion"

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.finished = 0
        self.done = anyio.Event()

    @hookimpl
    def qtasks_task_finished(self, worker: Any, task: Any) -> None:
        """Count one final record."""
        self.finished += 1
        if self.finished == self.expected:
            self.done.set()


async def main(count: int) -> None:
    """Enqueue ``count`` no-op tasks, run a worker until all are done, and stop."""
    app = QueueTasks(name="count", broker_url="memory://")
    completion = Completion(count)
    app.add_plugin(completion)

    @app.task
    async def noop() -> None:
        return None

    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 10, False)
        for _ in range(count):
            await noop.add_task()
        await completion.done.wait()
        await app.stop()
    print(f"{count} tasks done")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
