"""The 56 original trigger names: the hook each maps to, the kwargs it passes and what it may replace."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import attrs

from qtasks.errors import ControlFlow, PluginError, TaskPluginTriggerError
from qtasks.kernel.lifecycle import format_error
from qtasks.kernel.model import FINAL_STATUSES, Decision, ExecutionCall, Task, TaskDefinition, TaskMessage

__all__ = ["HookCall", "LegacyTrigger", "LEGACY_TRIGGERS", "Builder", "Applier", "decision_from"]


@attrs.define
class HookCall:
    """One call of a hook as the legacy adapter sees it.

    Attributes:
        trigger: The legacy name being forwarded (for error messages).
        args: The hook's arguments by spec name; an applier replaces the pipe value in place.
        decision: For ``qtasks_task_failed``: the first decision a legacy answer gave.
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
        """The task definition of the call, or of the task record (None for an unknown task)."""
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


def _add_process(call: HookCall, returned: Mapping[str, Any]) -> None:
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


def _decide(call: HookCall, returned: Mapping[str, Any]) -> None:
    if call.decision is None:
        call.decision = decision_from(returned)


# -- builders ---------------------------------------------------------------------------------


def _on(component: str, build: Builder) -> Builder:
    """Forward only the calls whose ``component`` argument is the original's component."""
    return lambda c: build(c) if c.args["component"] == component else None


def _finished(status: frozenset[str]) -> Callable[[Builder], Builder]:
    """Forward only the calls whose task record has one of ``status``."""
    return lambda build: lambda c: build(c) if c.args["task"].status in status else None


def _with_task(build: Builder) -> Builder:
    """Forward only the calls for a registered task (the original had no executor otherwise)."""
    return lambda c: build(c) if c.definition is not None else None


def _args_info(definition: TaskDefinition) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(definition.func).parameters.values())
    except (TypeError, ValueError):
        return []


def _retry_applies(c: HookCall) -> bool:
    definition, error = c.args["call"].definition, c.args["error"]
    if not definition.retry or isinstance(error, ControlFlow):
        return False
    return not definition.retry_on_exc or isinstance(error, tuple(definition.retry_on_exc))


_DONE = FINAL_STATUSES | {"retry"}
_ended = _finished(frozenset(_DONE))
_CALL_KEYS = {"task_name": ("task_name", str), "priority": ("priority", int), "extra": ("extra", dict), "args": ("args", tuple), "kw": ("kwargs", dict)}
_ENTRY_KEYS = {"name_": ("name", str), "name": ("name", str), "key": ("key", str), "value": ("value", _same)}
_message_keys = _fields("message", _MESSAGE_KEYS)


def _claim(c: HookCall) -> dict[str, Any]:
    m: TaskMessage = c.args["message"]
    return {"task_name": m.task_name, "uuid": m.uuid, "priority": m.priority, "args": tuple(m.args), "kw": dict(m.kwargs), "created_at": m.created_at}


def _prepare(c: HookCall) -> dict[str, Any]:
    call = c.args["call"]
    return {"qtasks": c.app, "broker": c.app.broker, "task_name": call.task_name, "priority": call.priority, "args": tuple(call.args), "kw": dict(call.kwargs)}


def _enqueued(c: HookCall) -> dict[str, Any]:
    t = c.args["task"]
    return {"qtasks": c.app, "broker": c.app.broker, "task_name": t.task_name, "priority": t.priority, "args": tuple(t.args), "kwargs": dict(t.kwargs)}


def _t(name: str, hook: str, component: str | None, build: Builder, apply: Applier | None = None, replaces: str = "", *, on_exit: bool = False, note: str = "") -> LegacyTrigger:
    return LegacyTrigger(name, hook, component, build, apply, tuple(replaces.split()), on_exit, note)


_START, _STOP = "qtasks_startup", "qtasks_shutdown"
_STATUS, _RESULT = "qtasks_task_status", "qtasks_task_result"
_SCOPE, _FINISHED = "qtasks_task_scope", "qtasks_task_finished"
_once = "fires once, when the component starts"
_read = "every app.get and result wait"
_stops = "fires once, when the component stops"

# Within one hook, the order is the original firing order: replacements chain in that order.
_TABLE = (
    # producer
    _t("qtasks_add_task_before_broker", "qtasks_task_prepare", None, _prepare, _fields("call", _CALL_KEYS), "task_name priority extra args kw",
       note="only the keys present replace values (an answer {'priority': 7} keeps the args)"),
    _t("broker_add_before", "qtasks_task_store", "broker", lambda c: {"broker": c.app.broker, "storage": c.app.storage, "model": c.args["task"]}, _model("model"), "model",
       note="model is the new Task; a dict replaces only its keys"),
    _t("storage_add", "qtasks_task_store", "storage", lambda c: {"storage": c.app.storage, "uuid": c.args["task"].uuid, "task_status": c.args["task"]},
       _storage_add, "uuid task_status", note="task_status is the new Task"),
    _t("qtasks_add_task_after_broker", "qtasks_task_enqueued", None, _enqueued, note="passes kwargs (not kw), as the original did"),
    _t("broker_add_after", "qtasks_task_enqueued", "broker", lambda c: {"broker": c.app.broker, "storage": c.app.storage, "model": c.args["task"]},
       note="model is the stored new Task"),
    # reads
    _t("storage_get", "qtasks_task_get", "storage", lambda c: {"storage": c.app.storage, "result": c.args["task"]}, _model("result", "task"), "result task",
       note=_read),
    _t("storage_get_all", "qtasks_task_get", "storage", lambda c: {"storage": c.app.storage, "results": [c.args["task"]]},
       _get_all, "results",
       note="called once per record read, with results=[task]; results[0] replaces it"),
    _t("broker_get", "qtasks_task_get", "broker", lambda c: {"broker": c.app.broker, "task": c.args["task"]}, _model("task"), "task", note=_read),
    _t("qtasks_get", "qtasks_task_get", None, lambda c: {"qtasks": c.app, "broker": c.app.broker, "task": c.args["task"]}, _model("task"), "task", note=_read),
    # claim
    _t("broker_add_worker", "qtasks_task_claimed", "broker", lambda c: {"broker": c.app.broker, "worker": c.args["worker"], **_claim(c)}, _message_keys,
       "task_name uuid priority args kw created_at", note="when a worker claims the message, before anything runs"),
    _t("worker_add", "qtasks_task_claimed", "worker", lambda c: {"worker": c.args["worker"], **_claim(c)}, _message_keys,
       "name task_name uuid priority args kw created_at", note="both name (the original's key) and task_name are honoured"),
    _t("storage_add_process", "qtasks_task_claimed", "storage",
       lambda c: {"storage": c.app.storage, "task_data": f"{c.args['message'].task_name}:{c.args['message'].uuid}:{c.args['message'].priority}", "priority": c.args["message"].priority},
       _add_process, "task_data priority", note="now passes task_data ('name:uuid:priority') and priority"),
    # status writes
    _t("worker_execute_before", _STATUS, "worker",
       _finished(frozenset({"process"}))(lambda c: {"worker": c.args["worker"], "task_broker": message_of(c.args["task"]), "task_func": c.definition, "model": c.args["task"]}),
       _model("model"), "model", note="only for the process record"),
    _t("broker_update", _STATUS, "broker", lambda c: {"broker": c.app.broker, "kw": task_fields(c.args["task"])}, _status_kw, "kw", note="every status write; kw holds the record's fields"),
    _t("storage_update", _STATUS, "storage", lambda c: {"storage": c.app.storage, "kw": task_fields(c.args["task"])}, _status_kw, "kw", note="every status write; kw holds the record's fields"),
    _t("worker_remove_finished_task", _STATUS, "worker",
       _ended(lambda c: {"worker": c.args["worker"], "broker": c.app.broker, "task_func": c.definition, "task_broker": message_of(c.args["task"]), "model": c.args["task"]}),
       _model("model"), "model", note="final and retry records; a returned task_broker is ignored"),
    _t("broker_remove_finished_task", _STATUS, "broker", _ended(lambda c: {"broker": c.app.broker, "storage": c.app.storage, "model": c.args["task"]}),
       _model("model"), "model", note="final and retry records"),
    # execution
    _t("worker_run_task_before", "qtasks_task_resolve_args", "worker", lambda c: {"worker": c.args["worker"], "task_func": c.definition, "task_broker": c.args["call"].message},
       _run_task_before, "task_func task_broker", note="a new task_broker also replaces the call's args and kwargs"),
    _t("task_executor_args_replace", "qtasks_task_resolve_args", "worker",
       lambda c: {"task_executor": c.executor, "args": list(c.args["call"].args), "kw": dict(c.args["call"].kwargs), "args_info": _args_info(c.definition)},
       _fields("call", {"args": ("args", tuple), "kw": ("kwargs", dict)}), "args kw", note="args_info is the function's inspect.Parameter list"),
    _t("task_executor_middlewares_execute", _SCOPE, "worker", lambda c: {"task_executor": c.executor, "middlewares_before": list(c.definition.middlewares_before)},
       note="fires once, on entering the scope, with middlewares_before"),
    _t("task_executor_before_execute", _SCOPE, "worker", lambda c: {"task_executor": c.executor}, note="on entering the scope"),
    _t("task_executor_after_execute", _SCOPE, "worker", lambda c: {"task_executor": c.executor}, on_exit=True, note="on leaving the scope after a success"),
    _t("task_executor_run_task", _RESULT, "worker", lambda c: None if c.definition.generating else {"task_executor": c.executor, "result": c.args["result"]},
       _value("result", "result"), "result", note="non-generator tasks"),
    _t("task_executor_run_task_gen", _RESULT, "worker", lambda c: {"task_executor": c.executor, "results": c.args["result"]} if c.definition.generating else None,
       _value("result", "results"), "results", note="generator tasks"),
    _t("task_executor_after_execute_result_replace", _RESULT, "worker", lambda c: {"task_executor": c.executor, "result": c.args["result"]},
       _value("result", "result"), "result", note="every successful task"),
    _t("task_executor_decode", _RESULT, "worker", lambda c: {"task_executor": c.executor, "result": c.args["result"]}, _value("result", "result"), "result",
       note="result is the Python value; the storage serialises it"),
    # failures
    _t("task_executor_run_task_trigger_error", "qtasks_task_failed", "worker",
       lambda c: {"task_executor": c.executor, "task_func": c.definition, "task_broker": c.args["call"].message, "e": c.args["error"]}
       if isinstance(c.args["error"], TaskPluginTriggerError) else None,
       _decide, "result", note="only for TaskPluginTriggerError; {'result': x} succeeds with x, no answer fails"),
    _t("worker_task_error_retry", "qtasks_task_failed", "worker",
       lambda c: {"broker": c.app.broker, "task_func": c.definition, "task_broker": c.args["call"].message, "trace": format_error(c.args["error"])}
       if _retry_applies(c) else None,
       _decide, "model retry result", note="tasks with retry= whose error matches; a model with status retry (or retry: true) retries"),
    # end of a task
    _t("task_executor_task_close", _FINISHED, "worker", _finished(frozenset({"success"}))(_with_task(lambda c: {"task_executor": c.executor, "task_func": c.definition, "task_broker": message_of(c.args["task"])})),
       note="success only, after the record is stored"),
    _t("worker_execute_after", _FINISHED, "worker", lambda c: {"worker": c.args["worker"], "task_func": c.definition, "task_broker": message_of(c.args["task"]), "model": c.args["task"]},
       note="now also passes worker"),
    _t("storage_remove_finished_task", _FINISHED, "storage", _ended(lambda c: {"storage": c.app.storage, "task_broker": message_of(c.args["task"]), "model": c.args["task"]}),
       note="final and retry records, after they are stored"),
    # startup, in the order the app starts its components
    _t("starter_start", _START, None, _on("app", lambda c: {"starter": None}), note=f"{_once} (app; the starter in the original); starter is None"),
    _t("broker_start", _START, "broker", _on("broker", lambda c: {"broker": c.app.broker, "worker": c.app.worker}), note=_once),
    _t("broker_running_older_tasks", _START, "broker", _on("broker", lambda c: {"broker": c.app.broker, "worker": c.app.worker}),
       note=f"{_once}; recovery is automatic (a task is acked only once its outcome is stored; a stopping worker hands its tasks back)"),
    _t("broker_listen_start", _START, "broker", _on("broker", lambda c: {"broker": c.app.broker, "worker": c.app.worker}), note=_once),
    _t("storage_start", _START, "storage", _on("storage", lambda c: {"storage": c.app.storage}), note=_once),
    _t("storage_delete_finished_tasks", _START, "storage", _on("storage", lambda c: {"storage": c.app.storage}), note=f"{_once}; nothing is deleted"),
    _t("storage_running_older_tasks", _START, "storage", _on("storage", lambda c: {"storage": c.app.storage, "worker": c.app.worker}),
       note=f"{_once}; recovery is automatic (a task is acked only once its outcome is stored; a stopping worker hands its tasks back)"),
    _t("global_config_start", _START, "global_config", _on("global_config", lambda c: {"global_config": c.app.global_config}), note=_once),
    _t("global_config_set_status", _START, "global_config", _on("global_config", lambda c: {"global_config": c.app.global_config}), note=_once),
    _t("worker_start", _START, "worker", _on("worker", lambda c: {"worker": c.app.worker}), note="fires once, when the worker starts claiming"),
    # shutdown (the kernel calls shutdown implementations in reverse order)
    _t("worker_stop", _STOP, "worker", _on("worker", lambda c: {"worker": c.app.worker}), note="fires once, after the worker drained"),
    _t("global_config_stop", _STOP, "global_config", _on("global_config", lambda c: {"global_config": c.app.global_config}), note=_stops),
    _t("storage_stop", _STOP, "storage", _on("storage", lambda c: {"storage": c.app.storage}), note=_stops),
    _t("broker_stop", _STOP, "broker", _on("broker", lambda c: {"broker": c.app.broker}), note=_stops),
    _t("starter_stop", _STOP, None, _on("app", lambda c: {"starter": None}), note=f"{_stops} (app; the starter in the original); starter is None"),
    _t("qtasks_stop", _STOP, None, _on("app", lambda c: {"qtasks": c.app, "starter": None}), note=f"{_stops} (app); starter is None"),
    # app operations
    _t("qtasks_ping", "qtasks_pinged", None, lambda c: {"qtasks": c.app, "global_config": c.app.global_config}, note="after app.ping()"),
    _t("qtasks_flush_all", "qtasks_flushed", None, _on("broker", lambda c: {"qtasks": c.app, "broker": c.app.broker}), note="once per flush_all (with the broker)"),
    _t("broker_flush_all", "qtasks_flushed", "broker", _on("broker", lambda c: {"broker": c.app.broker}), note="once per flush_all"),
    _t("storage_flush_all", "qtasks_flushed", "storage", _on("storage", lambda c: {"storage": c.app.storage}), note="once per flush_all"),
    _t("global_config_set", "qtasks_global_config_set", "global_config",
       lambda c: {"global_config": c.app.global_config, "name_": c.args["entry"].name, "key": c.args["entry"].key, "value": c.args["entry"].value},
       _fields("entry", _ENTRY_KEYS), "name key value", note="the name is passed as name_ (name is the trigger's own parameter)"),
    _t("global_config_get", "qtasks_global_config_read", "global_config",
       lambda c: {"global_config": c.app.global_config, "get": c.args["value"]} if c.args["key"] is not None else None, _value("value", "get"), "get"),
    _t("global_config_get_all", "qtasks_global_config_read", "global_config",
       lambda c: {"global_config": c.app.global_config, "get": c.args["value"]} if c.args["key"] is None and not _is_pattern(c.args["name"]) else None,
       _value("value", "get"), "get", note="reads without a key whose name has no * ? ["),
    _t("global_config_get_match", "qtasks_global_config_read", "global_config",
       lambda c: {"global_config": c.app.global_config, "get": c.args["value"]} if c.args["key"] is None and _is_pattern(c.args["name"]) else None,
       _value("value", "get"), "get", note="reads without a key whose name is a pattern (* ? [)"),
    _t("stats_inspect", "qtasks_stats_inspected", None, lambda c: {"stats": c.args["stats"]}, note="after Stats.inspect(); fired by the stats object in the original"),
)


def _is_pattern(name: str) -> bool:
    return any(char in name for char in "*?[")


LEGACY_TRIGGERS: dict[str, LegacyTrigger] = {entry.name: entry for entry in _TABLE}
