"""typed_args: task parameters annotated with attrs classes, dataclasses or pydantic models arrive as instances."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Union

import attrs
from cattrs.errors import BaseValidationError
from cattrs.preconf.json import make_converter
from cattrs.v import format_exception, transform_error

from qtasks.builtin_plugins.typed_pydantic import (
    describe_validation_error, field_keys, install_pydantic_hooks, is_pydantic_model_class, is_validation_error,
)
from qtasks.errors import ControlFlow
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import ExecutionCall, TaskCall
from qtasks.kernel.signature import EMPTY, TaskParameter, task_parameters

__all__ = [
    "ArgumentValidationError", "CONVERTER", "is_model_class", "is_typed_parameter", "typed_parameters", "to_plain", "type_name",
    "qtasks_register_task_options", "qtasks_task_prepare", "qtasks_task_resolve_args", "qtasks_task_result",
]

# One converter for every app: it holds no per-app state, only cattrs' own dispatch caches. The
# JSON preconf makes datetimes, bytes and sets travel as JSON and come back as their types.
CONVERTER = make_converter()
install_pydantic_hooks(CONVERTER)

_POSITIONAL_ONLY, _VAR_POSITIONAL, _VAR_KEYWORD = inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD
_NOT_BY_NAME = (_POSITIONAL_ONLY, _VAR_POSITIONAL, _VAR_KEYWORD)
_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)


class ArgumentValidationError(ControlFlow, ValueError):
    """A task's arguments do not fit its annotations: the task ends ``error`` before its function runs.

    It is a ``ControlFlow`` error, so ``retries`` never runs the task again: the same arguments
    would fail the same way.
    """


def _from_qtasks(cls: type) -> bool:
    return any(getattr(klass, "__module__", "").partition(".")[0] == "qtasks" for klass in cls.__mro__[:-1])


def is_model_class(hint: Any) -> bool:
    """True for an attrs class, a dataclass or a pydantic model, QTasks' own classes excepted
    (their plugins inject them: ``State``, task handles)."""
    if not isinstance(hint, type) or typing.get_origin(hint) is not None:
        return False
    if not (attrs.has(hint) or dataclasses.is_dataclass(hint) or is_pydantic_model_class(hint)):
        return False
    return not _from_qtasks(hint)


@lru_cache(maxsize=1024)
def _is_model_type(kind: type) -> bool:
    return is_model_class(kind)


def _mentions_model(hint: Any) -> bool:
    if is_model_class(hint) or is_model_class(typing.get_origin(hint)):
        return True
    return any(_mentions_model(member) for member in typing.get_args(hint))


def _unannotated(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def is_typed_parameter(parameter: TaskParameter) -> bool:
    """True when the parameter's annotation names a model (``Order``, ``list[Order]``,
    ``Order | None``, ...) and no QTasks object (``Depends(...)``) is its default or metadata."""
    if not _mentions_model(_unannotated(parameter.annotation)):
        return False
    markers = [*parameter.metadata, *(() if parameter.default is EMPTY else (parameter.default,))]
    return not any(_from_qtasks(type(marker)) for marker in markers)


@lru_cache(maxsize=4096)
def typed_parameters(func: Callable[..., Any], echo: bool) -> tuple[TaskParameter, ...]:
    """The parameters of a task function that this plugin converts (the echo handle excluded)."""
    return tuple(parameter for parameter in task_parameters(func, echo) if is_typed_parameter(parameter))


def type_name(hint: Any) -> str:
    """A short name for an annotation: ``Order``, ``list[Order]``, ``Order | None``."""
    origin, members = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return type_name(members[0])
    if origin is Union or origin is types.UnionType:
        return " | ".join(type_name(member) for member in members)
    if origin is not None and members:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(member) for member in members)}]"
    if hint is type(None):
        return "None"
    return getattr(hint, "__name__", None) or str(hint)


def _format_leaf(error: BaseException, hint: type | None) -> str:
    if is_validation_error(error):
        return f"invalid {type_name(hint)}: {describe_validation_error(error)}"
    return format_exception(error, hint)


def _problems(error: Exception) -> str:
    if isinstance(error, BaseValidationError):
        return "; ".join(transform_error(error, format_exception=_format_leaf))
    if is_validation_error(error):
        return describe_validation_error(error)
    return f"{type(error).__name__}: {error}"


def _structure(label: str, parameter: TaskParameter, value: Any, problems: list[str], source: str = "") -> Any:
    """Return ``value`` structured to the parameter's annotation; on failure, add a line to ``problems``."""
    base = parameter.base
    if is_model_class(base) and isinstance(value, base):
        return value
    hint = _unannotated(parameter.annotation)
    try:
        return CONVERTER.structure(value, hint)
    except Exception as error:
        problems.append(" ".join(f"{label} ({type_name(hint)}{source}): {_problems(error)}".split()))  # one line, as logs show it
        return value


def _given(parameter: TaskParameter, args: list[Any], kwargs: dict[str, Any]) -> bool:
    return (parameter.position is not None and parameter.position < len(args)) or parameter.name in kwargs


def _take_fields(task: str, parameters: tuple[TaskParameter, ...], typed: tuple[TaskParameter, ...], args: list[Any], kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Take out of ``kwargs`` the keyword arguments that fill a pydantic parameter that was not
    given (its fields, when they are not parameters of the function); return them by parameter."""
    names = {parameter.name for parameter in parameters}
    owners: dict[str, TaskParameter] = {}
    for parameter in typed:
        if not is_pydantic_model_class(parameter.base) or parameter.kind in _NOT_BY_NAME or _given(parameter, args, kwargs):
            continue
        for key in sorted((field_keys(parameter.base) & kwargs.keys()) - names):
            owner = owners.setdefault(key, parameter)
            if owner is not parameter:
                raise ArgumentValidationError(
                    f"task {task!r}: keyword argument {key!r} is a field of both {owner.name!r} and {parameter.name!r}; "
                    f"pass those models whole instead, e.g. add_task(..., {owner.name}={{...}}, {parameter.name}={{...}})"
                )
    taken: dict[str, dict[str, Any]] = {}
    for key, owner in owners.items():
        taken.setdefault(owner.name, {})[key] = kwargs.pop(key)
    return taken


def _resolve(call: ExecutionCall) -> ExecutionCall | None:
    """Return the call with its model arguments structured, or None when the task has no typed parameter."""
    definition = call.definition
    echo = bool(definition.echo)
    typed = typed_parameters(definition.func, echo)
    if not typed:
        return None
    parameters = task_parameters(definition.func, echo)
    task, args, kwargs = definition.name, list(call.args), dict(call.kwargs)
    problems: list[str] = []
    taken = _take_fields(task, parameters, typed, args, kwargs)
    positional = sum(parameter.position is not None for parameter in parameters)
    names = {parameter.name for parameter in parameters}
    for parameter in typed:
        fields = taken.get(parameter.name)
        if fields is not None:
            source = f", from the keyword arguments {', '.join(fields)}"
            kwargs[parameter.name] = _structure(f"parameter {parameter.name!r}", parameter, fields, problems, source)
        elif parameter.kind is _VAR_POSITIONAL:
            for index in range(positional, len(args)):
                args[index] = _structure(f"argument {index} (*{parameter.name})", parameter, args[index], problems)
        elif parameter.kind is _VAR_KEYWORD:
            for key in sorted(kwargs.keys() - names):
                kwargs[key] = _structure(f"keyword argument {key!r} (**{parameter.name})", parameter, kwargs[key], problems)
        elif parameter.position is not None and parameter.position < len(args):
            args[parameter.position] = _structure(f"parameter {parameter.name!r}", parameter, args[parameter.position], problems)
        elif parameter.name in kwargs and parameter.kind is not _POSITIONAL_ONLY:
            kwargs[parameter.name] = _structure(f"parameter {parameter.name!r}", parameter, kwargs[parameter.name], problems)
    if problems:
        raise ArgumentValidationError(f"task {task!r}: the function was not called, its arguments do not fit the annotations: {' | '.join(problems)}")
    return attrs.evolve(call, args=tuple(args), kwargs=kwargs)


def to_plain(value: Any) -> Any:
    """Return ``value`` with every model in it (nested in lists, tuples and dicts too) turned into
    JSON data; ``value`` itself, untouched, when it holds none."""
    kind = type(value)
    if kind in _SCALAR_TYPES or ((kind is tuple or kind is list or kind is dict) and not value):
        return value  # the common cases, answered without a class check
    if isinstance(value, _SCALARS):
        return value
    if not isinstance(value, type) and _is_model_type(kind):
        return CONVERTER.unstructure(value)
    if isinstance(value, (list, tuple)):
        items = [to_plain(item) for item in value]
        return value if all(new is old for new, old in zip(items, value)) else items
    if isinstance(value, Mapping):
        entries = {key: to_plain(item) for key, item in value.items()}
        return value if all(entries[key] is item for key, item in value.items()) else entries
    return value


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Claim model-annotated parameters, so that a task using them is refused while this plugin is disabled."""
    register.parameter("an attrs class, dataclass or pydantic model annotation", is_typed_parameter)


@hookimpl
def qtasks_task_prepare(call: TaskCall) -> TaskCall | None:
    """Turn model arguments into JSON data before the message is serialized."""
    args, kwargs = to_plain(call.args), to_plain(call.kwargs)
    if args is call.args and kwargs is call.kwargs:
        return None
    return attrs.evolve(call, args=tuple(args), kwargs=dict(kwargs))


@hookimpl
def qtasks_task_resolve_args(call: ExecutionCall) -> ExecutionCall | None:
    """Structure the arguments of model-annotated parameters; raise ``ArgumentValidationError`` when one does not fit."""
    return _resolve(call)


@hookimpl
def qtasks_task_result(result: Any) -> Any:
    """Turn a returned model (or models in a returned list or dict) into JSON data the storage can keep."""
    plain = to_plain(result)
    return None if plain is result else plain
