"""Small helpers for the broker conformance suite: the broker case, a worker context and polling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from qtasks.kernel.worker import Worker

__all__ = ["BrokerCase", "serving", "eventually"]

T = TypeVar("T")


@dataclass(frozen=True)
class BrokerCase:
    """One broker under test.

    Attributes:
        url: The broker URL every app of the test is built on.
        cross_process: Whether separate app objects (and processes) on ``url`` share one queue.
    """

    url: str
    cross_process: bool


@asynccontextmanager
async def serving(app: Any, concurrency: int = 1, grace_period: float = 5.0) -> AsyncIterator[Worker]:
    """Run a kernel worker for ``app`` in the background; stop it (draining) on exit.

    Unlike ``app.serve`` (and ``qtasks.testing.running_worker``) this leaves the app's components
    open after the worker stops, so a test can still ask the broker about what it left behind;
    the ``make_app`` fixture closes the app at the end of the test.
    """
    worker = Worker(app, concurrency, grace_period)
    async with anyio.create_task_group() as group:
        group.start_soon(worker.serve)
        try:
            yield worker
        finally:
            worker.request_stop()
            with anyio.fail_after(grace_period + 5):
                await worker.stopped.wait()


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 5.0, step: float = 0.02) -> T:
    """Poll the async ``probe`` until it returns something truthy, and return that.

    Raises ``TimeoutError`` after ``timeout`` seconds (an ``anyio.fail_after`` loop).
    """
    with anyio.fail_after(timeout):
        while True:
            value = await probe()
            if value:
                return value
            await anyio.sleep(step)
