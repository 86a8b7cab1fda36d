"""Producer hooks, in the order ``add_task`` fires them: prepare, store, enqueue, enqueued; and get."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtasks.hookspecs import trigger
from qtasks.kernel.model import Task, TaskCall, TaskMessage

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["qtasks_task_prepare", "qtasks_task_store", "qtasks_task_enqueue", "qtasks_task_unique", "qtasks_task_enqueued", "qtasks_task_get",
           "qtasks_task_cancel_running", "qtasks_make_stream"]


@trigger("pipe", {"app"}, value="call", value_type=TaskCall)
async def qtasks_task_prepare(app: AsyncQueueTasks, call: TaskCall) -> TaskCall | None:
    """A producer asked for a task; nothing is stored yet.

    Fired by ``add_task`` first. Pipe: return a new :class:`TaskCall` (``attrs.evolve(call, ...)``)
    to change the name, arguments, priority or extra fields. Raising aborts the ``add_task``.
    """


@trigger("pipe", {"app", "broker", "storage"}, value="task", value_type=Task)
async def qtasks_task_store(app: AsyncQueueTasks, task: Task) -> Task | None:
    """The ``new`` record is about to be stored (with its message, in the same step).

    Fired by ``add_task`` and ``add_tasks`` after prepare. Pipe: return a new :class:`Task` to
    change what is stored.
    """


@trigger("pipe", {"app", "broker"}, value="message", value_type=TaskMessage)
async def qtasks_task_enqueue(app: AsyncQueueTasks, message: TaskMessage) -> TaskMessage | None:
    """The message is about to be queued; nothing is stored yet.

    Fired by ``add_task`` and ``add_tasks`` after ``qtasks_task_store``. Pipe: return a new
    :class:`TaskMessage`; it is serialized again, and if it cannot be, ``add_task`` raises
    ``SerializationError`` and nothing is stored or queued.
    """


@trigger("first", {"app"})
async def qtasks_task_unique(app: AsyncQueueTasks, task: Task, key: str) -> Task | None:
    """``add_task(..., unique_key=key)`` is about to store and queue ``task``.

    Fired by ``add_task`` after ``qtasks_task_enqueue``, only when a ``unique_key`` was given
    (``task.extra["unique_key"]`` holds it). First result: return the record of a live task that
    holds ``key`` and ``add_task`` returns it without storing or queuing anything; return None
    once ``task`` holds the key and it goes ahead. With no implementation, ``add_task`` refuses
    ``unique_key``. The builtin ``unique`` plugin implements it.
    """


@trigger("notify", {"app", "broker"})
async def qtasks_task_enqueued(app: AsyncQueueTasks, task: Task) -> None:
    """The task is stored and queued. Fired by ``add_task`` (and for each task of ``add_tasks``)
    last. Notify: errors are logged."""


@trigger("pipe", {"app", "broker", "storage"}, value="task", value_type=Task)
async def qtasks_task_get(app: AsyncQueueTasks, task: Task) -> Task | None:
    """A record was read by ``app.get`` (or a result wait) and is about to be returned.

    Fired by the app. Pipe: return a new :class:`Task` to change what the caller sees.
    """


@trigger("first", {"app"})
async def qtasks_task_cancel_running(app: AsyncQueueTasks, task: Task, reason: str) -> bool | None:
    """``app.cancel(uuid)`` found the task claimed by a worker (running, or about to run).

    Fired by the app after the broker refused to drop the task because a worker holds it. First
    result: return True once the worker that runs it has been asked to stop it with ``reason``
    (it ends ``cancel``), False when it cannot be (it finished meanwhile). With no implementation,
    ``app.cancel`` of a running task raises naming the disabled ``cancel`` plugin.
    """


@trigger("make", {"app"})
def qtasks_make_stream(app: AsyncQueueTasks, task: Task) -> Any:
    """Return an object that follows the values a generator task yields (``task.stream()``).

    Fired by ``Task.stream()`` (sync-only, first result). The object is an async iterator and a
    sync iterator of the task's handled values, in order, ending when the task ends. The builtin
    ``generators`` plugin implements it; with none, ``stream()`` raises naming that plugin.
    """
