"""The ``qtasks.v1.QTasksService`` servicer: AddTask and GetTask over one app, values as JSON text."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import grpc

from qtasks.cli_support import redact_text
from qtasks.contrib.grpc import qtasks_pb2, qtasks_pb2_grpc
from qtasks.errors import BrokerUnavailable, QTasksError
from qtasks.kernel.model import Call, Task, as_uuid

__all__ = ["QTasksServicer", "RequestError", "to_json", "json_field"]

log = logging.getLogger("qtasks.grpc")
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
_EXAMPLES = {list: '[1, "two"]', dict: '{"name": "value"}'}


class RequestError(ValueError):
    """A request the server cannot act on; its text goes back to the client as ``error``."""


def to_json(value: Any) -> str:
    """Encode a task's result as JSON text; a value JSON cannot express becomes its ``str()``
    (the whole result, when a part of it cannot be: keys that are not strings, cycles)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def json_field(field: str, text: str, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """Decode a request's JSON field that must hold an array (``list``) or an object (``dict``).

    Args:
        field: The field's name, for the error.
        text: The field's value; empty means an empty array or object.
        kind: ``list`` or ``dict``.

    Raises:
        RequestError: The text is not JSON, or not of that kind; the message names the field.
    """
    if not text:
        return kind()
    expected = _JSON_TYPES[kind]
    try:
        value = json.loads(text)
    except ValueError as error:
        raise RequestError(f"{field} is not valid JSON ({error}): send a JSON {expected}, e.g. {_EXAMPLES[kind]}") from None
    if not isinstance(value, kind):
        raise RequestError(f"{field} must be a JSON {expected}, got a JSON {_JSON_TYPES.get(type(value), type(value).__name__)}: {text[:80]}")
    return value


def _error_text(error: BaseException) -> str:
    return redact_text(f"{type(error).__name__}: {error}")


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


class QTasksServicer(qtasks_pb2_grpc.QTasksServiceServicer):
    """Serves AddTask and GetTask for ``app`` (the async kernel) on a ``grpc.aio`` server.

    Args:
        app: The async app (``qtasks.asyncio.QueueTasks``, or a sync app's kernel).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def _parse_add(self, request: qtasks_pb2.AddTaskRequest) -> tuple[str, Call, int | None, float | None]:
        """Check an AddTask request: the task name, both JSON fields, the timeout."""
        name = request.name
        if name not in self.app.tasks:
            registered = ", ".join(sorted(self.app.tasks)) or "none (the server's app must import the module that defines its tasks)"
            what = f"unknown task {name!r}" if name else "name is empty"
            raise RequestError(f"{what}: give the name of a task registered on the server's app; registered tasks: {registered}")
        args = json_field("args_json", request.args_json, list)
        kwargs = json_field("kwargs_json", request.kwargs_json, dict)
        try:
            call = Call(*args, **kwargs)
        except TypeError:  # the one key Call's own signature takes
            raise RequestError("kwargs_json: the key 'self' cannot be passed as a keyword argument; pass it in args_json") from None
        timeout = request.timeout
        if not math.isfinite(timeout) or timeout < 0:
            raise RequestError(f"timeout must be a finite number of seconds >= 0 (0: do not wait), got {timeout}")
        return name, call, request.priority or None, timeout or None

    async def AddTask(self, request: qtasks_pb2.AddTaskRequest, context: grpc.aio.ServicerContext) -> qtasks_pb2.AddTaskResponse:  # noqa: N802 - the RPC's name
        """Enqueue the task; with a timeout, wait up to that long for its result."""
        try:
            name, call, priority, timeout = self._parse_add(request)
        except RequestError as error:
            return qtasks_pb2.AddTaskResponse(ok=False, error=str(error))
        try:
            [task] = await self.app.add_tasks(name, [call], priority=priority)
        except Exception as error:
            if isinstance(error, BrokerUnavailable) or not isinstance(error, (QTasksError, TypeError, ValueError)):
                log.error("gRPC AddTask(%r): enqueueing failed: %s", name, _error_text(error))  # not the caller's fault
            return qtasks_pb2.AddTaskResponse(ok=False, error=f"task {name!r} was not enqueued: {_error_text(error)}")
        if timeout is None:
            return qtasks_pb2.AddTaskResponse(ok=True, uuid=str(task.uuid), status=task.status)
        return await self._wait(name, task, timeout)

    async def _wait(self, name: str, task: Task, timeout: float) -> qtasks_pb2.AddTaskResponse:
        """Wait up to ``timeout`` seconds for an enqueued task: its outcome, or its status then."""
        try:
            final = await self.app.wait_result(task.uuid, timeout)
            if final is not None:
                return self._outcome(name, final)
            current = await self.app.get(task.uuid)
        except Exception as error:  # the storage failed while we waited
            log.error("gRPC AddTask(%r): waiting for task %s failed: %s", name, task.uuid, _error_text(error))
            return qtasks_pb2.AddTaskResponse(ok=False, uuid=str(task.uuid), status=task.status, error=f"waiting for the result failed: {_error_text(error)}")
        status = current.status if current is not None else task.status
        return qtasks_pb2.AddTaskResponse(
            ok=False, uuid=str(task.uuid), status=status,
            error=f"task {name!r} did not end within {timeout}s (status {status}); it goes on: call GetTask with its uuid later",
        )

    @staticmethod
    def _outcome(name: str, task: Task) -> qtasks_pb2.AddTaskResponse:
        """The response for a task that ended: its result, or why it did not succeed."""
        if task.status == "success":
            return qtasks_pb2.AddTaskResponse(ok=True, uuid=str(task.uuid), status=task.status, result_json=to_json(task.returning))
        reason = task.cancel_reason if task.status == "cancel" else _last_line(task.traceback)
        return qtasks_pb2.AddTaskResponse(ok=False, uuid=str(task.uuid), status=task.status, error=f"task {name!r} ended {task.status}: {reason}")

    async def GetTask(self, request: qtasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext) -> qtasks_pb2.GetTaskResponse:  # noqa: N802 - the RPC's name
        """Return the task's status and, with ``include_result``, its result or traceback."""
        try:
            uuid = as_uuid(request.uuid)
        except ValueError:
            return qtasks_pb2.GetTaskResponse(ok=False, error=f"uuid {request.uuid!r} is not a task uuid: pass the uuid AddTask returned")
        try:
            task = await self.app.get(uuid)
        except Exception as error:  # the storage failed
            log.error("gRPC GetTask(%s): reading the record failed: %s", uuid, _error_text(error))
            return qtasks_pb2.GetTaskResponse(ok=False, error=f"reading task {uuid} failed: {_error_text(error)}")
        if task is None:
            return qtasks_pb2.GetTaskResponse(
                ok=False, error=f"no task with uuid {uuid}: it was not enqueued on this app, or its record expired (result_ttl)",
            )
        response = qtasks_pb2.GetTaskResponse(ok=True, status=task.status)
        if request.include_result:
            if task.status == "success":
                response.result_json = to_json(task.returning)
            response.traceback = task.traceback or task.cancel_reason or ""
        return response
