"""The 56 original trigger names: the hook each maps to, the kwargs it passes and what it may replace."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from qtasks.errors import ControlFlow, TaskPluginTriggerError
from qtasks.kernel.legacy_convert import (
    Applier,
    Builder,
    HookCall,
    LegacyTrigger,
    _add_process_apply,
    _decide,
    _fields,
    _get_all,
    _message_keys,
    _model,
    _run_task_before,
    _same,
    _status_kw,
    _storage_add,
    _value,
    message_of,
    task_fields,
)
from qtasks.kernel.lifecycle import format_error
from qtasks.kernel.model import FINAL_STATUSES, Task, TaskDefinition, TaskMessage

__all__ = ["LEGACY_TRIGGERS"]


# -- builders: the original kwargs of one hook call, or None where the original did not fire ----


def _component(c: HookCall, name: str) -> Any:
    """A kwarg by name: a hook argument of that name, else the app or one of its components."""
    if name in c.args:
        return c.args[name]
    if name == "qtasks":
        return c.app
    if name == "starter":
        return None  # the kernel has no starter object
    return getattr(c.app, name)


def _kw(*names: str, **values: Callable[[HookCall], Any]) -> Builder:
    """Build kwargs from ``names`` (see :func:`_component`) and values computed from the call."""
    return lambda c: {**{n: _component(c, n) for n in names}, **{k: value(c) for k, value in values.items()}}


def _when(test: Callable[[HookCall], bool], build: Builder) -> Builder:
    """Forward only the calls that pass ``test``."""
    return lambda c: build(c) if test(c) else None


def _on(component: str, build: Builder) -> Builder:
    """Forward only the calls whose ``component`` argument is ``component``."""
    return _when(lambda c: c.args["component"] == component, build)


def _record(c: HookCall) -> Task:
    return c.args["task"]


def _record_message(c: HookCall) -> TaskMessage:
    return message_of(c.args["task"])


def _record_fields(c: HookCall) -> dict[str, Any]:
    return task_fields(c.args["task"])


def _call_message(c: HookCall) -> TaskMessage:
    return c.args["call"].message


def _func(c: HookCall) -> TaskDefinition | None:
    return c.definition


def _executor(c: HookCall) -> Any:
    return c.executor


def _result(c: HookCall) -> Any:
    return c.args["result"]


def _error(c: HookCall) -> BaseException:
    return c.args["error"]


def _trace(c: HookCall) -> str:
    return format_error(c.args["error"])


def _read_value(c: HookCall) -> Any:
    return c.args["value"]


def _ended(c: HookCall) -> bool:
    return c.args["task"].status in FINAL_STATUSES or c.args["task"].status == "retry"


def _processing(c: HookCall) -> bool:
    return c.args["task"].status == "process"


def _succeeded(c: HookCall) -> bool:
    return c.args["task"].status == "success" and c.definition is not None


def _generating(c: HookCall) -> bool:
    return bool(c.args["call"].definition.generating)


def _plugin_trigger_error(c: HookCall) -> bool:
    return isinstance(c.args["error"], TaskPluginTriggerError)


def _retry_applies(c: HookCall) -> bool:
    """As the original: only for a task with ``retry`` whose error matches ``retry_on_exc``."""
    definition, error = c.args["call"].definition, c.args["error"]
    if not definition.retry or isinstance(error, ControlFlow):
        return False
    return not definition.retry_on_exc or isinstance(error, tuple(definition.retry_on_exc))


def _is_pattern(name: str) -> bool:
    return any(char in name for char in "*?[")


def _args_info(c: HookCall) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(c.args["call"].definition.func).parameters.values())
    except (TypeError, ValueError):
        return []


def _prepare(c: HookCall) -> dict[str, Any]:
    call = c.args["call"]
    return {
        "qtasks": c.app, "broker": c.app.broker, "task_name": call.task_name, "priority": call.priority,
        "args": tuple(call.args), "kw": dict(call.kwargs),
    }


def _enqueued(c: HookCall) -> dict[str, Any]:
    task = c.args["task"]
    return {
        "qtasks": c.app, "broker": c.app.broker, "task_name": task.task_name, "priority": task.priority,
        "args": tuple(task.args), "kwargs": dict(task.kwargs),
    }


def _claim(*names: str) -> Builder:
    """Build the original claim kwargs: the named components and the message's fields."""

    def build(c: HookCall) -> dict[str, Any]:
        m: TaskMessage = c.args["message"]
        return {
            **{n: _component(c, n) for n in names}, "task_name": m.task_name, "uuid": m.uuid, "priority": m.priority,
            "args": tuple(m.args), "kw": dict(m.kwargs), "created_at": m.created_at,
        }

    return build


def _add_process(c: HookCall) -> dict[str, Any]:
    m: TaskMessage = c.args["message"]
    return {"storage": c.app.storage, "task_data": f"{m.task_name}:{m.uuid}:{m.priority}", "priority": m.priority}


def _args_replace(c: HookCall) -> dict[str, Any]:
    call = c.args["call"]
    return {"task_executor": c.executor, "args": list(call.args), "kw": dict(call.kwargs), "args_info": _args_info(c)}


def _config_set(c: HookCall) -> dict[str, Any]:
    entry = c.args["entry"]
    return {"global_config": c.app.global_config, "name_": entry.name, "key": entry.key, "value": entry.value}


def _t(
    name: str, hook: str, component: str | None, build: Builder, apply: Applier | None = None, replaces: str = "",
    *, on_exit: bool = False, note: str = "",
) -> LegacyTrigger:
    return LegacyTrigger(name, hook, component, build, apply, tuple(replaces.split()), on_exit, note)


_CALL_KEYS = {"task_name": ("task_name", str), "priority": ("priority", int), "extra": ("extra", dict), "args": ("args", tuple), "kw": ("kwargs", dict)}
_ARGS_KEYS = {"args": ("args", tuple), "kw": ("kwargs", dict)}
_ENTRY_KEYS = {"name_": ("name", str), "name": ("name", str), "key": ("key", str), "value": ("value", _same)}
_CLAIM_REPLACES = "task_name uuid priority args kw created_at"
_STORE, _ENQUEUED, _GET, _CLAIMED = "qtasks_task_store", "qtasks_task_enqueued", "qtasks_task_get", "qtasks_task_claimed"
_STATUS, _RESOLVE, _SCOPE, _RESULT = "qtasks_task_status", "qtasks_task_resolve_args", "qtasks_task_scope", "qtasks_task_result"
_FAILED, _FINISHED, _START, _STOP = "qtasks_task_failed", "qtasks_task_finished", "qtasks_startup", "qtasks_shutdown"
_FLUSHED, _CONFIG_READ = "qtasks_flushed", "qtasks_global_config_read"
_once = "fires once, when the component starts"
_stops = "fires once, when the component stops"
_read = "every app.get and result wait"
_recovery = (
    f"{_once}; recovery is automatic (a task is acked only once its outcome is stored; a stopping worker hands its tasks back)"
)
_by_kw = "every status write; kw holds the record's fields, only those returned are replaced"

# Within one hook, the order is the original firing order: replacements chain in that order.
_TABLE = (
    # producer
    _t("qtasks_add_task_before_broker", "qtasks_task_prepare", None, _prepare, _fields("call", _CALL_KEYS), "task_name priority extra args kw",
       note="only the keys present replace values (an answer {'priority': 7} keeps the args)"),
    _t("broker_add_before", _STORE, "broker", _kw("broker", "storage", model=_record), _model("model"), "model",
       note="model is the new Task; a dict replaces only its keys, unknown keys go to extra"),
    _t("storage_add", _STORE, "storage", _kw("storage", uuid=lambda c: c.args["task"].uuid, task_status=_record), _storage_add, "uuid task_status",
       note="task_status is the new Task"),
    _t("qtasks_add_task_after_broker", _ENQUEUED, None, _enqueued, note="passes kwargs (not kw), as the original did"),
    _t("broker_add_after", _ENQUEUED, "broker", _kw("broker", "storage", model=_record), note="model is the stored new Task"),
    # reads
    _t("storage_get", _GET, "storage", _kw("storage", result=_record), _model("result", "task"), "result task", note=_read),
    _t("storage_get_all", _GET, "storage", _kw("storage", results=lambda c: [c.args["task"]]), _get_all, "results",
       note="called once per record read, with results=[task]; results[0] replaces it"),
    _t("broker_get", _GET, "broker", _kw("broker", "task"), _model("task"), "task", note=_read),
    _t("qtasks_get", _GET, None, _kw("qtasks", "broker", "task"), _model("task"), "task", note=_read),
    # claim
    _t("broker_add_worker", _CLAIMED, "broker", _claim("broker", "worker"), _message_keys, _CLAIM_REPLACES,
       note="when a worker claims the message, before anything runs"),
    _t("worker_add", _CLAIMED, "worker", _claim("worker"), _message_keys, f"name {_CLAIM_REPLACES}",
       note="both name (the original's key) and task_name are honoured"),
    _t("storage_add_process", _CLAIMED, "storage", _add_process, _add_process_apply, "task_data priority",
       note="now passes task_data ('name:uuid:priority') and priority"),
    # status writes
    _t("worker_execute_before", _STATUS, "worker", _when(_processing, _kw("worker", task_broker=_record_message, task_func=_func, model=_record)),
       _model("model"), "model", note="only for the process record"),
    _t("broker_update", _STATUS, "broker", _kw("broker", kw=_record_fields), _status_kw, "kw", note=_by_kw),
    _t("storage_update", _STATUS, "storage", _kw("storage", kw=_record_fields), _status_kw, "kw", note=_by_kw),
    _t("worker_remove_finished_task", _STATUS, "worker",
       _when(_ended, _kw("worker", "broker", task_func=_func, task_broker=_record_message, model=_record)),
       _model("model"), "model", note="final and retry records; a returned task_broker is ignored"),
    _t("broker_remove_finished_task", _STATUS, "broker", _when(_ended, _kw("broker", "storage", model=_record)), _model("model"), "model",
       note="final and retry records"),
    # execution
    _t("worker_run_task_before", _RESOLVE, "worker", _kw("worker", task_func=_func, task_broker=_call_message), _run_task_before,
       "task_func task_broker", note="a new task_broker also replaces the call's args and kwargs"),
    _t("task_executor_args_replace", _RESOLVE, "worker", _args_replace, _fields("call", _ARGS_KEYS), "args kw",
       note="args_info is the function's inspect.Parameter list"),
    _t("task_executor_middlewares_execute", _SCOPE, "worker",
       _kw(task_executor=_executor, middlewares_before=lambda c: list(c.args["call"].definition.middlewares_before)),
       note="fires once, on entering the scope, with middlewares_before"),
    _t("task_executor_before_execute", _SCOPE, "worker", _kw(task_executor=_executor), note="on entering the scope"),
    _t("task_executor_after_execute", _SCOPE, "worker", _kw(task_executor=_executor), on_exit=True, note="on leaving the scope after a success"),
    _t("task_executor_run_task", _RESULT, "worker", _when(lambda c: not _generating(c), _kw(task_executor=_executor, result=_result)),
       _value("result", "result"), "result", note="non-generator tasks"),
    _t("task_executor_run_task_gen", _RESULT, "worker", _when(_generating, _kw(task_executor=_executor, results=_result)),
       _value("result", "results"), "results", note="generator tasks"),
    _t("task_executor_after_execute_result_replace", _RESULT, "worker", _kw(task_executor=_executor, result=_result),
       _value("result", "result"), "result", note="every successful task"),
    _t("task_executor_decode", _RESULT, "worker", _kw(task_executor=_executor, result=_result), _value("result", "result"), "result",
       note="result is the Python value; the storage serialises it"),
    # failures
    _t("task_executor_run_task_trigger_error", _FAILED, "worker",
       _when(_plugin_trigger_error, _kw(task_executor=_executor, task_func=_func, task_broker=_call_message, e=_error)),
       _decide, "result", note="only for TaskPluginTriggerError; {'result': x} succeeds with x, no answer fails"),
    _t("worker_task_error_retry", _FAILED, "worker", _when(_retry_applies, _kw("broker", task_func=_func, task_broker=_call_message, trace=_trace)),
       _decide, "model retry result", note="tasks with retry= whose error matches; a model with status retry (or retry: true) retries"),
    # end of a task
    _t("task_executor_task_close", _FINISHED, "worker", _when(_succeeded, _kw(task_executor=_executor, task_func=_func, task_broker=_record_message)),
       note="success only, after the record is stored"),
    _t("worker_execute_after", _FINISHED, "worker", _kw("worker", task_func=_func, task_broker=_record_message, model=_record),
       note="now also passes worker"),
    _t("storage_remove_finished_task", _FINISHED, "storage", _when(_ended, _kw("storage", task_broker=_record_message, model=_record)),
       note="final and retry records, after they are stored"),
    # startup, in the order the app starts its components
    _t("starter_start", _START, None, _on("app", _kw("starter")), note=f"{_once} (app; the starter in the original); starter is None"),
    _t("broker_start", _START, "broker", _on("broker", _kw("broker", "worker")), note=_once),
    _t("broker_running_older_tasks", _START, "broker", _on("broker", _kw("broker", "worker")), note=_recovery),
    _t("broker_listen_start", _START, "broker", _on("broker", _kw("broker", "worker")), note=_once),
    _t("storage_start", _START, "storage", _on("storage", _kw("storage")), note=_once),
    _t("storage_delete_finished_tasks", _START, "storage", _on("storage", _kw("storage")), note=f"{_once}; nothing is deleted"),
    _t("storage_running_older_tasks", _START, "storage", _on("storage", _kw("storage", "worker")), note=_recovery),
    _t("global_config_start", _START, "global_config", _on("global_config", _kw("global_config")), note=_once),
    _t("global_config_set_status", _START, "global_config", _on("global_config", _kw("global_config")), note=_once),
    _t("worker_start", _START, "worker", _on("worker", _kw("worker")), note="fires once, when the worker starts claiming"),
    # shutdown (the kernel calls shutdown implementations in reverse order)
    _t("worker_stop", _STOP, "worker", _on("worker", _kw("worker")), note="fires once, after the worker drained"),
    _t("global_config_stop", _STOP, "global_config", _on("global_config", _kw("global_config")), note=_stops),
    _t("storage_stop", _STOP, "storage", _on("storage", _kw("storage")), note=_stops),
    _t("broker_stop", _STOP, "broker", _on("broker", _kw("broker")), note=_stops),
    _t("starter_stop", _STOP, None, _on("app", _kw("starter")), note=f"{_stops} (app; the starter in the original); starter is None"),
    _t("qtasks_stop", _STOP, None, _on("app", _kw("qtasks", "starter")), note=f"{_stops} (app); starter is None"),
    # app operations
    _t("qtasks_ping", "qtasks_pinged", None, _kw("qtasks", "global_config"), note="after app.ping()"),
    _t("qtasks_flush_all", _FLUSHED, None, _on("broker", _kw("qtasks", "broker")), note="once per flush_all (with the broker)"),
    _t("broker_flush_all", _FLUSHED, "broker", _on("broker", _kw("broker")), note="once per flush_all"),
    _t("storage_flush_all", _FLUSHED, "storage", _on("storage", _kw("storage")), note="once per flush_all"),
    _t("global_config_set", "qtasks_global_config_set", "global_config", _config_set, _fields("entry", _ENTRY_KEYS), "name key value",
       note="the name is passed as name_ (name is the trigger's own parameter)"),
    _t("global_config_get", _CONFIG_READ, "global_config", _when(lambda c: c.args["key"] is not None, _kw("global_config", get=_read_value)),
       _value("value", "get"), "get", note="reads of one key"),
    _t("global_config_get_all", _CONFIG_READ, "global_config",
       _when(lambda c: c.args["key"] is None and not _is_pattern(c.args["name"]), _kw("global_config", get=_read_value)),
       _value("value", "get"), "get", note="reads without a key whose name has no * ? ["),
    _t("global_config_get_match", _CONFIG_READ, "global_config",
       _when(lambda c: c.args["key"] is None and _is_pattern(c.args["name"]), _kw("global_config", get=_read_value)),
       _value("value", "get"), "get", note="reads without a key whose name is a pattern (* ? [)"),
    _t("stats_inspect", "qtasks_stats_inspected", None, _kw("stats"), note="after Stats.inspect(); fired by the stats object in the original"),
)

LEGACY_TRIGGERS: dict[str, LegacyTrigger] = {entry.name: entry for entry in _TABLE}
