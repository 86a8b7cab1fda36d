"""The producer path of ``add_task``: prepare → store → enqueue → enqueued."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from qtasks.errors import SerializationError
from qtasks.kernel.model import Envelope, Task, TaskCall, TaskMessage, new_uuid, now

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["enqueue", "dumps"]


def dumps(app: AsyncQueueTasks, message: TaskMessage) -> bytes:
    """Serialize a message, turning any serializer failure into a ``SerializationError``."""
    try:
        return app.serializer.dumps(message)
    except SerializationError:
        raise
    except Exception as error:
        raise SerializationError(f"task {message.task_name!r}: arguments cannot be serialised: {error}") from error


async def enqueue(app: AsyncQueueTasks, task_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], priority: int | None) -> Task:
    """Store a ``new`` record for the call and queue its message; return the stored record.

    The message is serialized before anything is stored, so arguments that cannot travel fail
    the call without leaving a record behind; a message replaced by ``qtasks_task_enqueue`` that
    cannot be serialized leaves its record ``error`` with the reason.
    """
    if priority is None:
        definition = app.registry.tasks.get(task_name)
        priority = definition.priority if definition is not None else app.config.task_default_priority
    dispatcher = app.dispatcher
    call = await dispatcher.pipe("qtasks_task_prepare", app=app, call=TaskCall(task_name=task_name, args=args, kwargs=kwargs, priority=priority))
    task_id = new_uuid()
    created = now()
    args, kwargs, extra = tuple(call.args), dict(call.kwargs), dict(call.extra)
    message = TaskMessage(uuid=str(task_id), task_name=call.task_name, priority=call.priority, args=args, kwargs=kwargs, created_at=created.timestamp(), extra=extra)
    payload = dumps(app, message)
    task = Task(
        status="new", uuid=task_id, priority=call.priority, task_name=call.task_name, args=args,
        kwargs=kwargs, created_at=created, updated_at=created, extra=extra, app=app,
    )
    task = await dispatcher.pipe("qtasks_task_store", app=app, task=task)
    await app.storage.save(task)
    queued = await dispatcher.pipe("qtasks_task_enqueue", app=app, message=message)
    if queued is not message:
        try:
            payload = dumps(app, queued)
        except SerializationError as error:
            await app.storage.save(attrs.evolve(task, status="error", traceback=f"not queued: {error}", updated_at=now()))
            raise
    await app.broker.enqueue([Envelope(uuid=queued.uuid, priority=queued.priority, payload=payload)])
    await dispatcher.notify("qtasks_task_enqueued", app=app, task=task)
    return task
