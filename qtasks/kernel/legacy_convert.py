"""The legacy adapter's data and conversions: original answers (dicts) to attrs values and back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import attrs

from qtasks.errors import PluginError
from qtasks.kernel.model import Decision, ExecutionCall, Task, TaskDefinition, TaskMessage

__all__ = ["HookCall", "LegacyTrigger", "Builder", "Applier", "task_fields", "task_from", "message_from", "message_of", "decision_from"]


@attrs.define
class HookCall:
    """One call of a hook as the legacy adapter sees it.

    Attributes:
        args: The hook's arguments by spec name; an applier replaces the pipe value in place.
        trigger: The original name whose answer is being applied (for error messages).
        decision: For ``qtasks_task_failed``: the first decision an original answer gave.
    """

    args: dict[str, Any]
    trigger: str = ""
    decision: Decision | None = None

    @property
    def app(self) -> Any:
        """The app, from the ``app`` argument or the worker's."""
        return self.args["app"] if "app" in self.args else self.args["worker"].app

    @property
    def definition(self) -> TaskDefinition | None:
        """The task definition of a worker hook's call or record (None for an unknown task)."""
        if "call" in self.args and isinstance(self.args["call"], ExecutionCall):
            return self.args["call"].definition
        return self.app.registry.tasks.get(self.args["task"].task_name)

    @property
    def executor(self) -> Any:
        """The executor of the task (the original ``task_executor``), or None for an unknown task."""
        definition = self.definition
        return None if definition is None else self.args["worker"].executor_for(definition)


Builder = Callable[[HookCall], "dict[str, Any] | None"]
Applier = Callable[[HookCall, Mapping[str, Any]], None]


@attrs.frozen
class LegacyTrigger:
    """One original trigger name.

    Attributes:
        name: The original name, as ``plugin.trigger(name, ...)`` receives it.
        hook: The hook it is forwarded from.
        component: The original component that fired it (None: the app, the starter or stats).
        build: Returns the original kwargs for one hook call, or None when this call is not one
            the original fired it for (another component, status or kind of task).
        apply: Applies the honoured keys of a returned dict to the call; None if nothing is honoured.
        replaces: The honoured keys, for listings.
        on_exit: For ``qtasks_task_scope``: forwarded when the scope exits (after a success).
        note: How it differs from the original, for listings.
    """

    name: str
    hook: str
    component: str | None
    build: Builder = attrs.field(eq=False, repr=False)
    apply: Applier | None = attrs.field(default=None, eq=False, repr=False)
    replaces: tuple[str, ...] = ()
    on_exit: bool = False
    note: str = ""


# -- conversions ------------------------------------------------------------------------------


def _timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), timezone.utc)


def _same(value: Any) -> Any:
    return value


_TASK_CONVERT: dict[str, Callable[[Any], Any]] = {
    "uuid": lambda v: v if isinstance(v, UUID) else UUID(str(v)),
    "priority": int, "args": tuple, "kwargs": dict, "extra": dict,
    "created_at": _datetime, "updated_at": _datetime,
}
_TASK_FIELDS = frozenset(f.name for f in attrs.fields(Task)) - {"app"}
_MESSAGE_KEYS = {
    "task_name": ("task_name", str), "name": ("task_name", str), "uuid": ("uuid", str), "priority": ("priority", int),
    "args": ("args", tuple), "kw": ("kwargs", dict), "kwargs": ("kwargs", dict), "created_at": ("created_at", _timestamp),
    "extra": ("extra", dict),
}


def task_fields(task: Task) -> dict[str, Any]:
    """Return a record's fields (without ``app``) as the original ``kw`` / model dict."""
    return {name: getattr(task, name) for name in sorted(_TASK_FIELDS)}


def task_from(old: Task, new: Any, where: str) -> Task:
    """Turn a returned model into a record: a Task as is, a dict replacing only the fields present.

    Keys that are not Task fields go into ``extra``, as the original stored unknown fields.
    """
    if isinstance(new, Task):
        return new if new.app is not None else attrs.evolve(new, app=old.app)
    if not isinstance(new, Mapping):
        raise PluginError(f"{where} returned {type(new).__name__}; return a Task or a dict of its fields")
    changes = {k: _TASK_CONVERT.get(k, _same)(v) for k, v in new.items() if k in _TASK_FIELDS}
    unknown = {k: v for k, v in new.items() if k not in _TASK_FIELDS and k != "app"}
    if unknown:
        changes["extra"] = {**dict(changes.get("extra", old.extra)), **unknown}
    return attrs.evolve(old, **changes) if changes else old


def message_from(old: TaskMessage, new: Any, where: str) -> TaskMessage:
    """Turn a returned ``task_broker`` into a message: a TaskMessage as is, or a dict of its fields."""
    if isinstance(new, TaskMessage):
        return new
    if not isinstance(new, Mapping):
        raise PluginError(f"{where} returned {type(new).__name__}; return a TaskMessage or a dict of its fields")
    return attrs.evolve(old, **{field: convert(new[key]) for key, (field, convert) in _MESSAGE_KEYS.items() if key in new})


def message_of(task: Task) -> TaskMessage:
    """Rebuild the broker message (the original ``task_broker``) of a record."""
    return TaskMessage(
        uuid=str(task.uuid), task_name=task.task_name, priority=task.priority, args=tuple(task.args),
        kwargs=dict(task.kwargs), created_at=task.created_at.timestamp(), extra=dict(task.extra),
    )


def decision_from(returned: Mapping[str, Any]) -> Decision | None:
    """Translate an original error-trigger answer into a :class:`Decision`, or None to go on.

    ``{"result": x}`` succeeds with x; ``{"retry": truthy}`` or a model with status ``retry``
    retries (after ``delay`` seconds if given); a model with status ``cancel`` or ``success``
    cancels or succeeds; anything else decides nothing.
    """
    delay = float(returned.get("delay") or 0.0)
    if "result" in returned:
        return Decision(action="succeed", result=returned["result"])
    if returned.get("retry"):
        return Decision(action="retry", delay=delay)
    model = returned.get("model")
    fields = task_fields(model) if isinstance(model, Task) else model if isinstance(model, Mapping) else {}
    status = str(fields.get("status", ""))
    if status == "retry":
        return Decision(action="retry", delay=delay, reason=fields.get("traceback"))
    if status == "cancel":
        return Decision(action="cancel", reason=fields.get("cancel_reason"))
    if status == "success":
        return Decision(action="succeed", result=fields.get("returning"))
    return None


# -- appliers ---------------------------------------------------------------------------------


def _fields(arg: str, keys: Mapping[str, tuple[str, Callable[[Any], Any]]]) -> Applier:
    """Replace the fields of the attrs value ``arg`` named by the keys present in the answer."""

    def apply(call: HookCall, returned: Mapping[str, Any]) -> None:
        changes = {field: convert(returned[key]) for key, (field, convert) in keys.items() if key in returned}
        if changes:
            call.args[arg] = attrs.evolve(call.args[arg], **changes)

    return apply


def _model(*keys: str) -> Applier:
    """Replace the ``task`` record with each returned model among ``keys``."""

    def apply(call: HookCall, returned: Mapping[str, Any]) -> None:
        for key in keys:
            if key in returned:
                call.args["task"] = task_from(call.args["task"], returned[key], f"{call.trigger} ({key})")

    return apply


def _value(arg: str, key: str, pick: Callable[[Any], Any] = _same) -> Applier:
    """Replace the plain value ``arg`` with the returned ``key``."""

    def apply(call: HookCall, returned: Mapping[str, Any]) -> None:
        if key in returned:
            call.args[arg] = pick(returned[key])

    return apply


def _get_all(call: HookCall, returned: Mapping[str, Any]) -> None:
    if returned.get("results"):
        call.args["task"] = task_from(call.args["task"], returned["results"][0], f"{call.trigger} (results[0])")


def _status_kw(call: HookCall, returned: Mapping[str, Any]) -> None:
    if "kw" in returned:
        call.args["task"] = task_from(call.args["task"], returned["kw"], f"{call.trigger} (kw)")


def _storage_add(call: HookCall, returned: Mapping[str, Any]) -> None:
    _model("task_status")(call, returned)
    if "uuid" in returned:
        call.args["task"] = task_from(call.args["task"], {"uuid": returned["uuid"]}, call.trigger)


def _add_process_apply(call: HookCall, returned: Mapping[str, Any]) -> None:
    message: TaskMessage = call.args["message"]
    if "task_data" in returned:
        name, uuid, priority = str(returned["task_data"]).rsplit(":", 2)
        message = attrs.evolve(message, task_name=name, uuid=uuid, priority=int(priority))
    if "priority" in returned:
        message = attrs.evolve(message, priority=int(returned["priority"]))
    call.args["message"] = message


def _run_task_before(call: HookCall, returned: Mapping[str, Any]) -> None:
    execution: ExecutionCall = call.args["call"]
    if "task_func" in returned:
        if not isinstance(returned["task_func"], TaskDefinition):
            raise PluginError(f"{call.trigger} returned task_func={returned['task_func']!r}; return a TaskDefinition")
        execution = attrs.evolve(execution, definition=returned["task_func"])
    if "task_broker" in returned:
        message = message_from(execution.message, returned["task_broker"], f"{call.trigger} (task_broker)")
        execution = attrs.evolve(execution, message=message, args=tuple(message.args), kwargs=dict(message.kwargs))
    call.args["call"] = execution


_message_keys = _fields("message", _MESSAGE_KEYS)


def _decide(call: HookCall, returned: Mapping[str, Any]) -> None:
    if call.decision is None:
        call.decision = decision_from(returned)
