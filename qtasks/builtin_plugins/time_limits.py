"""Time limits: ``max_time=seconds`` ends a run that goes on too long with ``TimeoutError``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import ExecutionCall

__all__ = ["qtasks_register_task_options", "qtasks_task_scope", "time_limit"]


def _positive_seconds(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("use a number of seconds > 0")


@asynccontextmanager
async def time_limit(task_name: str, seconds: float) -> AsyncIterator[None]:
    """Cancel the body after ``seconds`` and raise ``TimeoutError`` naming the task and the limit.

    Only this limit turns into that error: a ``TimeoutError`` the task raises itself goes through
    unchanged, and so does a cancellation from outside (a worker that stops).
    """
    with anyio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise TimeoutError(f"task {task_name!r} ran past max_time={seconds}s")


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare ``max_time``."""
    register("max_time", None, "Seconds after which the run fails with TimeoutError.", _positive_seconds)


@hookimpl
def qtasks_task_scope(worker: Any, call: ExecutionCall) -> Any:
    """Wrap a run that has ``max_time`` in its limit (argument resolution counts too)."""
    seconds = call.definition.max_time
    if seconds is None:
        return None
    return time_limit(call.definition.name, seconds)
