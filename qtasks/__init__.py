"""QTasks: a plugin-centric task queue. ``QueueTasks`` here is the sync app; see ``qtasks.asyncio``."""

from __future__ import annotations

from qtasks.errors import BrokerUnavailable, ConfigurationError, PluginError, QTasksError, SerializationError, TaskCancelError, UnknownOptionError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.blocking import QueueTasks
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.model import Call, Decision, ExecutionCall, Task, TaskCall, TaskMessage, TaskStatusEnum
from qtasks.version import __version__

__all__ = [
    "QueueTasks",
    "QueueConfig",
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
