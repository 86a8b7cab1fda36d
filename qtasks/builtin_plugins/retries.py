"""Retries: ``retry=N`` runs a failed task again after an exponential, jittered delay held by the broker."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from qtasks.errors import ControlFlow
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Decision, ExecutionCall

__all__ = ["qtasks_register_task_options", "qtasks_task_failed", "backoff_delay", "RETRY_DELAY", "RETRY_BACKOFF", "RETRY_MAX_DELAY"]

RETRY_DELAY = 1.0  # seconds before the first retry
RETRY_BACKOFF = 2.0  # each later delay is this many times the one before
RETRY_MAX_DELAY = 300.0  # no delay is longer


def backoff_delay(retry: int, delay: float, backoff: float, ceiling: float, draw: Callable[[], float] = random.random) -> float:
    """The delay before retry number ``retry`` (1 for the first): ``delay * backoff ** (retry - 1)``,
    capped at ``ceiling``, then jittered to between half and all of it ("equal jitter"), so that
    tasks that failed together do not all come back at the same moment."""
    capped = min(delay * backoff ** (retry - 1), ceiling) if delay > 0 else 0.0
    return capped / 2 + capped / 2 * draw()


def _count(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("use a whole number of retries >= 0")


def _seconds(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("use a number of seconds >= 0")


def _factor(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
        raise ValueError("use a factor >= 1 (1: the same delay every time)")


def _exceptions(value: Any) -> None:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(item, type) and issubclass(item, BaseException) for item in items):
        raise TypeError("use a list of exception classes, e.g. retry_on_exc=[ConnectionError, TimeoutError]")


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare ``retry``, ``retry_on_exc``, ``retry_delay``, ``retry_backoff`` and ``retry_max_delay``."""
    register("retry", None, "Extra attempts after a failure.", _count)
    register("retry_on_exc", None, "Exception classes that trigger a retry (subclasses match); default: any.", _exceptions)
    register("retry_delay", RETRY_DELAY, "Seconds before the first retry (0: at once).", _seconds)
    register("retry_backoff", RETRY_BACKOFF, "Each later retry waits this many times longer.", _factor)
    register("retry_max_delay", RETRY_MAX_DELAY, "The longest wait between two attempts, in seconds.", _seconds)


@hookimpl(trylast=True)
def qtasks_task_failed(worker: Any, call: ExecutionCall, error: BaseException) -> Decision | None:
    """Retry while attempts remain and the error matches ``retry_on_exc``, after the backoff delay."""
    definition = call.definition
    retries = definition.retry
    if not retries or isinstance(error, ControlFlow):
        return None
    allowed = definition.retry_on_exc
    if allowed and not isinstance(error, tuple(allowed) if isinstance(allowed, (list, tuple)) else allowed):
        return None
    if call.attempt > retries:
        return None
    delay = backoff_delay(call.attempt, definition.option("retry_delay", RETRY_DELAY), definition.option("retry_backoff", RETRY_BACKOFF),
                          definition.option("retry_max_delay", RETRY_MAX_DELAY))
    return Decision(action="retry", delay=delay)
