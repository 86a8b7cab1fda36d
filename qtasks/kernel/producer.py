"""The producer path of ``add_task`` and ``add_tasks``: prepare → store → enqueue → enqueued."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qtasks.errors import SerializationError, UnknownOptionError
from qtasks.kernel.model import Call, Envelope, Task, TaskCall, TaskMessage, new_uuid, now

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["enqueue", "enqueue_many", "dumps", "check_call", "check_unique", "not_before", "as_call", "UNIQUE_KEY"]

UNIQUE_KEY = "unique_key"  # the extra field that carries a task's unique key


def dumps(app: AsyncQueueTasks, message: TaskMessage) -> bytes:
    """Serialize a message, turning any serializer failure into a ``SerializationError``."""
    try:
        return app.serializer.dumps(message)
    except SerializationError:
        raise
    except Exception as error:
        raise SerializationError(f"task {message.task_name!r}: arguments cannot be serialised: {error}") from error


def check_call(task_name: Any, priority: Any, timeout: Any) -> None:
    """Reject a task name, priority or timeout that ``add_task`` cannot use, saying why."""
    if not isinstance(task_name, str) or not task_name:
        raise TypeError(f"add_task expects the task name first, got {task_name!r}")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise TypeError(f"add_task({task_name!r}): priority must be an int (lower runs first), got {priority!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0):
        raise ValueError(f"add_task({task_name!r}): timeout must be a number of seconds >= 0, got {timeout!r}")


def check_unique(app: AsyncQueueTasks, task_name: str, unique_key: Any) -> None:
    """Reject a ``unique_key`` that is not a non-empty string, or that no plugin can honour."""
    if not isinstance(unique_key, str) or not unique_key:
        raise TypeError(f"add_task({task_name!r}): unique_key must be a non-empty string, got {unique_key!r}")
    if not app.dispatcher.chain("qtasks_task_unique"):
        blocked = " (the builtin 'unique' plugin is disabled: remove it from disable_plugins)" if "unique" in app.pm.blocked_builtins else ""
        raise UnknownOptionError(f"add_task({task_name!r}): unique_key needs a plugin that implements qtasks_task_unique{blocked}")


def not_before(task_name: str, countdown: float | None, eta: datetime | None) -> float:
    """Return the epoch time before which the task must not run (0.0: at once).

    Raises:
        ValueError: both are given, ``countdown`` is negative, or ``eta`` has no time zone.
    """
    if countdown is None and eta is None:
        return 0.0
    if countdown is not None and eta is not None:
        raise ValueError(f"add_task({task_name!r}): give countdown or eta, not both")
    if countdown is not None:
        if not isinstance(countdown, (int, float)) or isinstance(countdown, bool) or countdown < 0:
            raise ValueError(f"add_task({task_name!r}): countdown must be a number of seconds >= 0, got {countdown!r}")
        return time.time() + countdown
    if not isinstance(eta, datetime):
        raise TypeError(f"add_task({task_name!r}): eta must be a datetime, got {type(eta).__name__}")
    if eta.tzinfo is None:
        raise ValueError(f"add_task({task_name!r}): eta {eta!r} has no time zone; pass an aware datetime, e.g. datetime.now(timezone.utc) + timedelta(minutes=5)")
    return eta.timestamp()


def as_call(item: Any) -> Call:
    """Turn one ``add_tasks`` item into a :class:`Call`: a tuple or list are positional
    arguments, a dict keyword arguments, a ``Call`` both."""
    if isinstance(item, Call):
        return item
    if isinstance(item, (tuple, list)):
        return Call(*item)
    if isinstance(item, Mapping):
        return Call(**item)
    raise TypeError(f"add_tasks: each call must be a tuple of arguments, a dict of keyword arguments or qtasks.Call(...), got {type(item).__name__}")


async def _prepare(app: AsyncQueueTasks, task_name: str, call: Call, priority: int, due: float, extra: Mapping[str, Any] | None = None) -> tuple[Task, Envelope]:
    dispatcher = app.dispatcher
    asked = TaskCall(task_name=task_name, args=call.args, kwargs=call.kwargs, priority=priority, extra=extra or {})
    prepared = await dispatcher.pipe("qtasks_task_prepare", app=app, call=asked)
    task_id = new_uuid()
    created = now()
    args, kwargs, extra = tuple(prepared.args), dict(prepared.kwargs), dict(prepared.extra)
    message = TaskMessage(uuid=str(task_id), task_name=prepared.task_name, priority=prepared.priority, args=args, kwargs=kwargs, created_at=created.timestamp(), extra=extra)
    payload = dumps(app, message)
    task = Task(
        status="new", uuid=task_id, priority=prepared.priority, task_name=prepared.task_name, args=args,
        kwargs=kwargs, created_at=created, updated_at=created, extra=extra, app=app,
    )
    task = await dispatcher.pipe("qtasks_task_store", app=app, task=task)
    queued = await dispatcher.pipe("qtasks_task_enqueue", app=app, message=message)
    if queued is not message:
        payload = dumps(app, queued)
    return task, Envelope(uuid=queued.uuid, priority=queued.priority, payload=payload, not_before=due)


def _priority(app: AsyncQueueTasks, task_name: str, priority: int | None) -> int:
    if priority is not None:
        return priority
    definition = app.registry.tasks.get(task_name)
    return definition.priority if definition is not None else app.config.task_default_priority


async def enqueue(
    app: AsyncQueueTasks, task_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], priority: int | None, due: float = 0.0,
    unique_key: str | None = None,
) -> Task:
    """Store a ``new`` record for the call and queue its message; return the stored record.

    The message is serialized (again, after a ``qtasks_task_enqueue`` replacement) before
    anything is stored, so a call that cannot travel fails without leaving a record behind.
    With ``unique_key``, ``qtasks_task_unique`` may return a live task holding the key instead.
    """
    extra = {UNIQUE_KEY: unique_key} if unique_key is not None else None
    task, envelope = await _prepare(app, task_name, Call(*args, **kwargs), _priority(app, task_name, priority), due, extra)
    if unique_key is not None:
        existing = await app.dispatcher.first("qtasks_task_unique", app=app, task=task, key=unique_key)
        if existing is not None:
            return existing
    await app.steps.enqueue([task], [envelope])
    await app.dispatcher.notify("qtasks_task_enqueued", app=app, task=task)
    return task


async def enqueue_many(app: AsyncQueueTasks, task_name: str, calls: Iterable[Any], priority: int | None, due: float = 0.0) -> list[Task]:
    """Store and queue many calls of one task in one step (all or none); return the records."""
    chosen = _priority(app, task_name, priority)
    prepared = [await _prepare(app, task_name, as_call(item), chosen, due) for item in calls]
    if not prepared:
        return []
    tasks = [task for task, _ in prepared]
    await app.steps.enqueue(tasks, [envelope for _, envelope in prepared])
    for task in tasks:
        await app.dispatcher.notify("qtasks_task_enqueued", app=app, task=task)
    return tasks
