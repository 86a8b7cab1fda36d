"""Component factories: the first plugin to return an object provides the broker, storage, etc."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtasks.hookspecs import trigger

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks
    from qtasks.kernel.model import TaskDefinition
    from qtasks.kernel.protocols import Broker, Executor, GlobalConfig, Serializer, Storage

__all__ = [
    "qtasks_make_broker",
    "qtasks_make_storage",
    "qtasks_make_global_config",
    "qtasks_make_serializer",
    "qtasks_make_executor",
]


@trigger("make", {"app"})
def qtasks_make_broker(app: AsyncQueueTasks, url: str) -> Broker | None:
    """Return the broker for ``url``, or None if this plugin does not serve that URL scheme.

    Fired by the app when it starts (sync-only, first result). Builtins are ``trylast``, so any
    plugin that is not itself ``trylast`` wins (pluggy runs ``trylast`` implementations in
    registration order, builtins first). With no result, start-up fails naming the URL and the
    blocked plugins.
    """


@trigger("make", {"app"})
def qtasks_make_storage(app: AsyncQueueTasks, url: str) -> Storage | None:
    """Return the task-record storage for ``url``, or None if this plugin does not serve it.

    Fired by the app when it starts (sync-only, first result), after the broker is made.
    """


@trigger("make", {"app"})
def qtasks_make_global_config(app: AsyncQueueTasks, url: str) -> GlobalConfig | None:
    """Return the shared key/value config (``app.global_config``) for ``url``, or None.

    Fired by the app when it starts (sync-only, first result).
    """


@trigger("make", {"app"})
def qtasks_make_serializer(app: AsyncQueueTasks) -> Serializer | None:
    """Return the serializer that turns task messages into bytes and back.

    Fired by the app when it starts (sync-only, first result). The builtin writes JSON through cattrs.
    """


@trigger("make", {"worker"})
def qtasks_make_executor(app: AsyncQueueTasks, task: TaskDefinition) -> Executor | None:
    """Return the executor that runs ``task`` (called once per task definition, then cached).

    Fired by the worker the first time it runs a task (sync-only, first result). The builtin honours
    the task's ``executor=`` option.
    """
