"""Public enums: ``TaskStatusEnum``."""

from __future__ import annotations

from qtasks.enums.task_status import TaskStatusEnum

__all__ = ["TaskStatusEnum"]
