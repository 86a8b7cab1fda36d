"""Task records as compact JSON, for storages that keep them outside the process."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import cattrs

from qtasks.builtin_plugins.serializer import json_encoder
from qtasks.errors import SerializationError
from qtasks.kernel.model import Task

__all__ = ["RecordCodec"]


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(value)


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


class RecordCodec:
    """Encodes a :class:`Task` record as UTF-8 JSON and back; results go through cattrs, so
    attrs classes and dataclasses are stored as dicts. Nothing is ever unpickled."""

    def __init__(self) -> None:
        self._encoder = json_encoder(cattrs.Converter())

    def dumps(self, task: Task) -> bytes:
        """Encode a record; raise ``SerializationError`` when its result or arguments cannot be."""
        body = {
            "status": task.status, "uuid": str(task.uuid), "priority": task.priority, "task_name": task.task_name,
            "args": list(task.args), "kwargs": task.kwargs, "created_at": task.created_at.timestamp(),
            "updated_at": task.updated_at.timestamp(), "returning": task.returning, "traceback": task.traceback,
            "retry": task.retry, "retry_child_uuid": _text(task.retry_child_uuid),
            "retry_parent_uuid": _text(task.retry_parent_uuid), "cancel_reason": task.cancel_reason,
            "attempts": task.attempts, "extra": task.extra, "errors": list(task.errors),
        }
        try:
            return self._encoder.encode(body).encode()
        except (TypeError, ValueError) as error:
            raise SerializationError(f"task {task.task_name!r} ({task.uuid}): the record cannot be stored as JSON: {error}") from None

    def loads(self, data: bytes, app: Any = None) -> Task:
        """Decode a record made by ``dumps``."""
        body = json.loads(data)
        return Task(
            status=body["status"], uuid=UUID(body["uuid"]), priority=body["priority"], task_name=body["task_name"],
            args=tuple(body["args"]), kwargs=body["kwargs"], created_at=_time(body["created_at"]),
            updated_at=_time(body["updated_at"]), returning=body["returning"], traceback=body["traceback"],
            retry=body["retry"], retry_child_uuid=_uuid(body["retry_child_uuid"]),
            retry_parent_uuid=_uuid(body["retry_parent_uuid"]), cancel_reason=body["cancel_reason"],
            attempts=body["attempts"], extra=body["extra"], errors=tuple(body.get("errors", ())), app=app,
        )


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)
