"""The exceptions QTasks raises, and the control-flow signals a task or plugin may raise on purpose."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "QTasksError",
    "ConfigurationError",
    "PluginError",
    "UnknownTaskError",
    "UnknownOptionError",
    "SerializationError",
    "BrokerUnavailable",
    "ControlFlow",
    "TaskCancelError",
    "TaskPluginTriggerError",
    "close_matches",
]


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean 'a', 'b'?)"`` for the nearest choices, or an empty string."""
    found = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    if not found:
        return ""
    return " (did you mean " + ", ".join(repr(f) for f in found) + "?)"


class QTasksError(Exception):
    """Base class of every error QTasks raises itself."""


class ConfigurationError(QTasksError):
    """The app, a plugin or a component is set up wrongly; the message says how to fix it."""


class PluginError(ConfigurationError):
    """A plugin is malformed: a wrong hook signature, an unknown trigger name, a bad return value."""


class UnknownTaskError(QTasksError, LookupError):
    """A task name that no registered task has."""


class UnknownOptionError(ConfigurationError, TypeError):
    """A task option that neither the kernel nor any registered plugin declares."""


class SerializationError(QTasksError, TypeError):
    """Task arguments or a result that the wire format cannot carry."""


class BrokerUnavailable(QTasksError, ConnectionError):
    """The broker or storage server did not answer within ``broker_timeout`` seconds."""


class ControlFlow(Exception):
    """Base of the exceptions a task or plugin raises on purpose; they cross hook boundaries."""


class TaskCancelError(ControlFlow):
    """Raised inside a task (or by ``ctx.cancel``) to end it with status ``cancel``."""


class TaskPluginTriggerError(ControlFlow):
    """Raised inside a task to let ``qtasks_task_failed`` plugins decide the outcome.

    Args:
        *args: The message.
        **kwargs: Kept on ``.kwargs`` for the plugins that handle it.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args)
        self.kwargs = kwargs
