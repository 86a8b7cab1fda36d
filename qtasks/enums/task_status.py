"""``TaskStatusEnum`` at its original import path."""

from __future__ import annotations

from qtasks.kernel.model import TaskStatusEnum

__all__ = ["TaskStatusEnum"]
