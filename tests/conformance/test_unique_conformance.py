"""unique_key on every broker: producers racing for one key, on two app objects where the broker is
shared between processes, queue one task; the key is free again once that task ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from qtasks.asyncio import QueueTasks

from .helpers import BrokerCase, serving

pytestmark = pytest.mark.anyio


async def test_concurrent_add_task_with_one_key_queues_one_task(make_app: Callable[..., QueueTasks], broker_case: BrokerCase) -> None:
    first = make_app()
    apps = [first, make_app(name=first.name)] if broker_case.cross_process else [first]
    runs: list[int] = []
    for app in apps:
        @app.task(name="nightly_report")
        async def nightly_report(n: int) -> int:
            runs.append(n)
            return n

    returned: list[Any] = []

    async def produce(n: int) -> None:
        returned.append(await apps[n % len(apps)].add_task("nightly_report", n, unique_key="nightly"))

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(produce, n)
    assert len({task.uuid for task in returned}) == 1  # every producer got the one task queued
    winner = returned[0]
    async with serving(apps[-1], concurrency=2):
        done = await apps[-1].wait_result(winner.uuid, 10)
        again = await first.add_task("nightly_report", 99, unique_key="nightly", timeout=10)
    assert done.status == "success" and runs[0] == done.returning
    assert again.uuid != winner.uuid and again.returning == 99
    assert sorted(runs) == sorted([done.returning, 99])
