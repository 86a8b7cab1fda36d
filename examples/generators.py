"""Generator tasks: each value goes through ``generate_handler``, whose answer the generator
receives; a caller follows the values while the task runs; the ``return`` value is kept.

Run it with ``python examples/generators.py`` (the SQLite default, no server).
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.generators import RETURN_KEY

app = QueueTasks(name="generators-example")


def grade(score: int) -> str:
    """The handler: its return value is what the generator gets back from ``yield``."""
    return "pass" if score >= 50 else "fail"


@app.task(generate_handler=grade)
def exams(scores: list[int]) -> Any:
    passed = 0
    for score in scores:
        verdict = yield score  # receives grade(score)
        passed += verdict == "pass"
        time.sleep(0.05)  # work between two values
    return f"{passed} of {len(scores)} passed"


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        task = await exams.add_task([70, 30, 90])
        async for verdict in task.stream():  # each value as soon as the task makes it
            print(f"streamed: {verdict}")
        record = await app.wait_result(task.uuid, 10)
        print(f"result: {record.returning}")
        print(f"returned: {record.extra[RETURN_KEY]}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
