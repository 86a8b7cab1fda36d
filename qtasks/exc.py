"""Exceptions a task raises on purpose, at their original import path."""

from __future__ import annotations

from qtasks.errors import TaskCancelError, TaskPluginTriggerError

__all__ = ["TaskCancelError", "TaskPluginTriggerError"]
