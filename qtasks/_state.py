"""Process-wide defaults: the last app created and its logger, used only where no app is given."""

from __future__ import annotations

from typing import Any

__all__ = ["app_main", "log_main", "kernel_of"]

app_main: Any = None
"""The last app constructed (the sync facade for ``qtasks.QueueTasks``), or None."""
log_main: Any = None
"""That app's ``qtasks.logs.Logger``, or None."""


def kernel_of(app: Any = None) -> Any:
    """Return the async kernel of ``app`` (a sync or async app), else of ``app_main``, else None."""
    app = app if app is not None else app_main
    return getattr(app, "_kernel", app)


def __getattr__(name: str) -> Any:
    """``logger_main``: the name some original docs use for ``log_main``."""
    if name == "logger_main":
        return log_main
    raise AttributeError(f"module 'qtasks._state' has no attribute {name!r}")
