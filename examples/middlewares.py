"""Middlewares and executors: code that runs around every task, or one task, and an executor
class that changes how failures are handled.

Run it with ``python examples/middlewares.py`` (the SQLite default, no server).
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from qtasks import Decision
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.executor import TaskExecutor
from qtasks.middlewares import TaskMiddleware

app = QueueTasks(name="middlewares-example")


class Timing(TaskMiddleware):
    """An app middleware (before): notes when the function starts."""

    def __call__(self) -> None:
        self.task_executor.kwargs.setdefault("started", time.monotonic())


class Normalise(TaskMiddleware):
    """A task middleware (before): cleans the argument the function gets."""

    def __call__(self) -> None:
        state = self.task_executor
        state.args = tuple(str(arg).strip().lower() for arg in state.args)


class Envelope(TaskMiddleware):
    """A task middleware (after): wraps the result that is stored."""

    async def __call__(self) -> None:
        self.task_executor.result = {"task": self.task_executor.definition.name, "value": self.task_executor.result}


class DefaultOnLookupError(TaskExecutor):
    """An executor class: a missing key is not an error for this task, it returns a default."""

    async def on_error(self, worker: Any, call: Any, error: BaseException) -> Decision | None:
        if isinstance(error, LookupError):
            return Decision(action="succeed", result={"task": call.definition.name, "value": "unknown"})
        return None


COLOURS = {"red": "#ff0000", "green": "#00ff00"}


@app.task(middlewares_before=[Normalise], middlewares_after=[Envelope], executor=DefaultOnLookupError)
def colour(name: str, started: float = 0.0) -> str:
    return COLOURS[name]


app.add_middleware(Timing)


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        for name in ("  RED ", "Green", "blue"):
            record = await colour.add_task(name, timeout=10)
            print(f"colour({name!r}): {record.status}: {record.returning}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
