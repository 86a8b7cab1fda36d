"""Logging: component start and stop, task failures and plugin errors, through stdlib logging."""

from __future__ import annotations

import logging
from typing import Any

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Task

__all__ = ["qtasks_startup", "qtasks_shutdown", "qtasks_task_finished"]

log = logging.getLogger("qtasks")


@hookimpl
def qtasks_startup(app: Any, component: str) -> None:
    """Log each component as it starts."""
    app.log.debug("%s started", component)


@hookimpl
def qtasks_shutdown(app: Any, component: str) -> None:
    """Log each component as it stops."""
    app.log.debug("%s stopped", component)


@hookimpl
def qtasks_task_finished(worker: Any, task: Task) -> None:
    """Log failed and retried tasks at WARNING, the rest at DEBUG."""
    if task.status not in ("error", "retry"):
        if worker.app.log.logger.isEnabledFor(logging.DEBUG):
            worker.app.log.debug("task %s %s ended %s", task.task_name, task.uuid, task.status)
        return
    last_line = (task.traceback or "").strip().splitlines()[-1:] or [""]
    worker.app.log.warning("task %s %s ended %s: %s", task.task_name, task.uuid, task.status, last_line[0])
