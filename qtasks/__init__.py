"""QTasks: a plugin-centric task queue. ``QueueTasks`` here is the sync app; see ``qtasks.asyncio``."""

from __future__ import annotations

from qtasks.errors import ConfigurationError, PluginError, QTasksError, SerializationError, TaskCancelError, UnknownOptionError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.blocking import QueueTasks
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.model import Decision, ExecutionCall, Task, TaskCall, TaskMessage, TaskStatusEnum
from qtasks.version import __version__

__all__ = [
    "QueueTasks",
    "QueueConfig",
    "hookimpl",
    "Task",
    "TaskCall",
    "TaskMessage",
    "ExecutionCall",
    "Decision",
    "TaskStatusEnum",
    "QTasksError",
    "ConfigurationError",
    "PluginError",
    "SerializationError",
    "UnknownOptionError",
    "TaskCancelError",
    "__version__",
]
