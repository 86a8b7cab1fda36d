"""``Task`` at its original import path."""

from __future__ import annotations

from qtasks.kernel.model import Task

__all__ = ["Task"]
