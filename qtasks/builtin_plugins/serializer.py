"""The default serializer: task messages as JSON through cattrs; nothing is ever unpickled."""

from __future__ import annotations

import json
from typing import Any

import cattrs

from qtasks.errors import SerializationError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import TaskMessage

__all__ = ["JsonSerializer", "json_encoder", "qtasks_make_serializer"]


def _reject(value: Any) -> Any:
    raise TypeError(f"object of type {type(value).__name__} is not JSON serializable")


def json_encoder(converter: cattrs.Converter) -> json.JSONEncoder:
    """A compact UTF-8 JSON encoder that unstructures attrs classes and dataclasses with
    ``converter`` and rejects whatever else JSON cannot carry (sets, arbitrary objects)."""

    def default(value: Any) -> Any:
        unstructured = converter.unstructure(value)
        if type(unstructured) is type(value):  # cattrs had no conversion to JSON types
            _reject(value)
        return unstructured

    return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default)


class JsonSerializer:
    """Encodes a :class:`TaskMessage` as compact UTF-8 JSON; attrs and dataclass arguments are
    unstructured to dicts by cattrs."""

    content_type = "application/json"

    def __init__(self) -> None:
        self.converter = cattrs.Converter()
        self._encoder = json_encoder(self.converter)

    def dumps(self, message: TaskMessage) -> bytes:
        """Encode ``message``; raise ``SerializationError`` naming the argument that cannot be encoded."""
        body = [message.uuid, message.task_name, message.priority, list(message.args), message.kwargs, message.created_at, message.extra]
        try:
            return self._encoder.encode(body).encode()
        except (TypeError, ValueError) as error:
            raise SerializationError(f"task {message.task_name!r}: {self._culprit(message)}: {error}; pass JSON types, attrs classes or dataclasses") from None

    def _culprit(self, message: TaskMessage) -> str:
        for index, value in enumerate(message.args):
            if not self._encodes(value):
                return f"argument {index}"
        for key, value in message.kwargs.items():
            if not self._encodes(value):
                return f"argument {key!r}"
        return "extra fields"

    def _encodes(self, value: Any) -> bool:
        try:
            self._encoder.encode(value)
        except (TypeError, ValueError):
            return False
        return True

    def loads(self, payload: bytes) -> TaskMessage:
        """Decode a payload made by ``dumps``; raise ``SerializationError`` for anything else."""
        try:
            uuid, task_name, priority, args, kwargs, created_at, extra = json.loads(payload)
            return TaskMessage(uuid=str(uuid), task_name=str(task_name), priority=int(priority), args=tuple(args), kwargs=dict(kwargs), created_at=float(created_at), extra=dict(extra))
        except (ValueError, TypeError) as error:
            raise SerializationError(f"not a QTasks JSON message: {error}") from None


@hookimpl(trylast=True)
def qtasks_make_serializer(app: Any) -> JsonSerializer:
    """Provide the JSON serializer unless another plugin provides one."""
    return JsonSerializer()
