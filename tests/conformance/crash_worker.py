"""A worker process that the crash-redelivery test kills: ``python crash_worker.py URL APP_NAME LEASE``.

It serves one task, ``crashy(marker)``, which writes ``marker`` (so the test knows the task is
running here) and then blocks for an hour; the test SIGKILLs the process while it blocks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.kernel.config import QueueConfig


def main(url: str, name: str, lease: float) -> None:
    app = QueueTasks(name=name, broker_url=url, config=QueueConfig(task_lease=lease))

    @app.task(name="crashy")
    async def crashy(marker: str) -> str:
        Path(marker).write_text(str(os.getpid()))
        await anyio.sleep(3600)
        return "subprocess"

    anyio.run(app.serve, 1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
