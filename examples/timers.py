"""Timers: the worker itself enqueues a task every 0.3 s, once per tick, with no extra process.

Run it with ``python examples/timers.py`` (the SQLite default, no server). The schedule is
declared on the app, so every worker of the app runs it; the worker holding the leader lease
enqueues each tick. Each task reads its tick's fire time from its record and prints it,
relative to the first tick. To run schedules in a process of their own instead, call
``AsyncTimer(app).run_forever()`` (``SyncTimer`` for the sync app) there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
from apscheduler.triggers.interval import IntervalTrigger

from qtasks.asyncio import QueueTasks
from qtasks.timers import AsyncTimer

app = QueueTasks(name="timers-example")
ticks: list[datetime] = []
three_ticks = anyio.Event()


@app.task(echo=True)
async def heartbeat(self: Any, service: str) -> str:
    """Print which tick enqueued this run: ``extra["timer"]`` holds the schedule and the fire time."""
    record = await self.ctx.get_metadata()
    tick = datetime.fromisoformat(record.extra["timer"]["tick"])
    ticks.append(tick)
    print(f"tick {len(ticks)}: heartbeat({service!r}) at +{(tick - ticks[0]).total_seconds():.1f}s")
    if len(ticks) == 3:
        three_ticks.set()
    return service


timer = AsyncTimer(app)  # the original API; qtasks.timers.schedule(app, ...) does the same
# misfire="catch_up": a tick the worker is late for still runs, so the output is always the same
timer.add_task("billing", task_name="heartbeat", trigger=IntervalTrigger(seconds=0.3), misfire="catch_up")


async def main() -> None:
    # Start afresh on each run of the example: drop the ticks and tasks an earlier run left in
    # the SQLite file (a real app keeps them: its schedules go on from their last tick).
    await app.flush_all()
    await app.global_config.delete("qtasks:timers:timers-example")
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        with anyio.fail_after(30):
            await three_ticks.wait()
        leader = await app.global_config.component.get("qtasks:timers-leader:timers-example", "leader")
        print("the leader is this worker:", leader["owner"] == app.worker.worker_id)
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
