"""Logging: rich output on a terminal, plain lines otherwise, levels from ``QueueConfig``; component and task events."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Task
from qtasks.logs import plain_handler

__all__ = ["qtasks_configure", "qtasks_startup", "qtasks_shutdown", "qtasks_task_finished", "make_handler", "wants_rich", "LIBRARY_LOGGER"]

LIBRARY_LOGGER = "qtasks"  # the worker, CLI and plugin modules log under qtasks.*
RICH_FORMAT = "[%(name)s] (%(subname)s) %(message)s"  # rich shows the time and the level itself
_MARK = "_qtasks_handler"  # set on the handlers this plugin installs, so it never stacks them


def wants_rich(stream: Any) -> bool:
    """True when ``stream`` is a terminal that takes colour: a TTY, ``NO_COLOR`` unset, ``TERM`` not ``dumb``."""
    isatty = getattr(stream, "isatty", None)
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(isatty and isatty())


def make_handler(format: str, stream: Any = None) -> logging.Handler:
    """A rich handler when ``stream`` (stderr by default) is a terminal, else plain ``format`` lines."""
    stream = stream if stream is not None else sys.stderr
    if wants_rich(stream):
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(file=stream), show_path=False, markup=False, rich_tracebacks=False)
        handler.addFilter(lambda record: setattr(record, "subname", getattr(record, "subname", record.name)) or True)
        handler.setFormatter(logging.Formatter(RICH_FORMAT))
    else:
        handler = plain_handler(format, stream)
    setattr(handler, _MARK, True)
    return handler


def _install(logger: logging.Logger, format: str, level: int) -> None:
    """Give ``logger`` one handler of ours and the configured level, unless logging is configured
    already: then the user's handlers (on it or on the root logger) and levels stay as they are."""
    if any(getattr(h, _MARK, False) for h in logger.handlers):
        logger.setLevel(level)
        return
    if logger.handlers or logging.getLogger().handlers:
        return
    logger.addHandler(make_handler(format))
    logger.propagate = False
    logger.setLevel(level)


@hookimpl
def qtasks_configure(app: Any) -> None:
    """Install the handlers of the app's logger and of ``qtasks.*``, and follow level changes."""
    config = app.config
    _install(app.log.logger, config.logs_format, config.logs_default_level_server)
    _install(logging.getLogger(LIBRARY_LOGGER), config.logs_format, config.logs_default_level_server)

    def follow(changed: Any, key: str, value: Any) -> None:
        if key == "logs_default_level_server":
            for logger in (app.log.logger, logging.getLogger(LIBRARY_LOGGER)):
                if any(getattr(h, _MARK, False) for h in logger.handlers):
                    logger.setLevel(value)
        elif key == "logs_format":
            for logger in (app.log.logger, logging.getLogger(LIBRARY_LOGGER)):
                for handler in logger.handlers:
                    if getattr(handler, _MARK, False) and not hasattr(handler, "console"):
                        handler.setFormatter(logging.Formatter(value))

    config.subscribe(follow)


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
