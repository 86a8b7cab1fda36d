"""QTasks: a plugin-centric task queue. ``QueueTasks`` here is the sync app; see ``qtasks.asyncio``."""

from __future__ import annotations

from typing import Any

from qtasks.errors import BrokerUnavailable, ConfigurationError, PluginError, QTasksError, SerializationError, TaskCancelError, UnknownOptionError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.blocking import QueueTasks
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.model import Call, Decision, ExecutionCall, Task, TaskCall, TaskMessage, TaskStatusEnum
from qtasks.routers import AsyncRouter, SyncRouter
from qtasks.shared import shared_task
from qtasks.version import __version__


def __getattr__(name: str) -> Any:
    """``qtasks.Depends`` (imported on first use, from the ``depends`` plugin's module)."""
    if name == "Depends":
        from qtasks.plugins import Depends

        return Depends
    raise AttributeError(f"module 'qtasks' has no attribute {name!r}")


__all__ = [
    "QueueTasks",
    "AsyncRouter",
    "SyncRouter",
    "shared_task",
    "QueueConfig",
    "Depends",
    "hookimpl",
    "Task",
    "Call",
    "TaskCall",
    "TaskMessage",
    "ExecutionCall",
    "Decision",
    "TaskStatusEnum",
    "QTasksError",
    "ConfigurationError",
    "PluginError",
    "SerializationError",
    "BrokerUnavailable",
    "UnknownOptionError",
    "TaskCancelError",
    "__version__",
]
