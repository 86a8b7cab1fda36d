"""Task context: ``echo=True`` hands a task its own handle; ``self.ctx`` reaches the app.

Run it with ``python examples/context.py`` (the SQLite default, no server). A report task reads
its own record, logs, enqueues child tasks of another task by name, and waits for them.
"""

from __future__ import annotations

from typing import Any

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="context-example")


@app.task
async def resize(image: str, width: int) -> str:
    return f"{image}@{width}px"


@app.task(echo=True)
async def thumbnails(self: Any, image: str) -> list[str]:
    """Make three sizes of ``image`` as child tasks of another task, ``resize``."""
    record = await self.ctx.get_metadata()
    self.ctx.get_logger().info("task %s is %s", self.ctx.task_uuid, record.status)
    children = [await self.add_task(image, width, task_name="resize", timeout=10) for width in (64, 128, 256)]
    return [child.returning for child in children]


@app.task(echo=True)
def checked(self: Any, value: int) -> int:
    """A sync echo task: ``self.ctx`` works in its thread too; ``cancel`` ends it ``cancel``."""
    if value < 0:
        self.ctx.cancel(f"nothing to do for {value}")
    return self.ctx.get_metadata().attempts + value


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 4, False)  # a worker in this process, no signal handling
        made = await thumbnails.add_task("cat.png", timeout=10)
        print(f"thumbnails: {made.status}: {made.returning}")
        for value in (41, -1):
            record = await checked.add_task(value, timeout=10)
            print(f"checked({value}): {record.status}: {record.returning if record.status == 'success' else record.cancel_reason}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
