"""The tasks, declared on a router: this module needs no app, and imports nothing heavy at the top.

``app.py`` includes the router; the worker and every producer import that app.
"""

from __future__ import annotations

from collections.abc import Iterator

from qtasks import AsyncRouter

router = AsyncRouter(name="shop")


@router.task  # bare: every option is the app's default (priority: config.task_default_priority)
async def add(x: int, y: int) -> int:
    """An async task: runs on the worker's event loop."""
    return x + y


@router.task(priority=1, retry=2)  # called: options are checked when an app includes the router
def average(numbers: list[float]) -> float:
    """A sync task: runs in a worker thread. Its heavy import happens in the worker only."""
    import statistics  # stands for a heavy dependency: a producer never imports it

    return statistics.fmean(numbers)


@router.task(name="countdown")
def count_down(start: int) -> Iterator[int]:
    """A generator task: the result is the list of yielded values."""
    yield from range(start, 0, -1)
