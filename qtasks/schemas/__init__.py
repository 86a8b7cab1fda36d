"""Public data classes at their original import paths."""

from __future__ import annotations

from qtasks.kernel.model import Task, TaskDefinition
from qtasks.schemas.test import TestConfig

TaskExecSchema = TaskDefinition

__all__ = ["Task", "TaskExecSchema", "TestConfig"]
