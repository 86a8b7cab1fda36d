"""Retries: ``retry=N`` runs a failed task again, ``retry_on_exc=[...]`` narrows which errors count."""

from __future__ import annotations

from typing import Any

from qtasks.errors import ControlFlow
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Decision, ExecutionCall

__all__ = ["qtasks_register_task_options", "qtasks_task_failed"]


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare ``retry`` and ``retry_on_exc``."""
    register("retry", None, "Extra attempts after a failure.")
    register("retry_on_exc", None, "Exception classes that trigger a retry (subclasses match); default: any.")


@hookimpl(trylast=True)
def qtasks_task_failed(worker: Any, call: ExecutionCall, error: BaseException) -> Decision | None:
    """Decide a retry while attempts remain and the error matches ``retry_on_exc``."""
    definition = call.definition
    retries = definition.retry
    if not retries or isinstance(error, ControlFlow):
        return None
    allowed = definition.retry_on_exc
    if allowed and not isinstance(error, tuple(allowed)):
        return None
    if call.attempt > retries:
        return None
    return Decision(action="retry", delay=0.0)
