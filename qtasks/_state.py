"""Process-wide defaults: the last app created and its logger, used only where no app is given."""

from __future__ import annotations

from typing import Any

__all__ = ["app_main", "log_main"]

app_main: Any = None
log_main: Any = None
