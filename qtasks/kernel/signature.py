"""A task function's parameters with resolved annotations, ``from __future__ import annotations`` included."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Union

import attrs

__all__ = ["TaskParameter", "task_parameters", "EMPTY"]

EMPTY = inspect.Parameter.empty


@attrs.frozen
class TaskParameter:
    """One parameter of a task function, as plugins that inject or convert arguments see it.

    Attributes:
        name: The parameter's name.
        kind: ``inspect.Parameter.POSITIONAL_ONLY`` ... ``VAR_KEYWORD``.
        position: Its index among the positional arguments a producer passes (the echo handle
            excluded); None for keyword-only and ``*args``/``**kwargs`` parameters.
        default: The default value, or ``EMPTY``.
        annotation: The resolved annotation (``Annotated`` kept), the raw string when it cannot
            be resolved, or ``EMPTY``.
    """

    name: str
    kind: Any
    position: int | None
    default: Any
    annotation: Any

    @property
    def metadata(self) -> tuple[Any, ...]:
        """The extras of an ``Annotated[T, ...]`` annotation (empty otherwise)."""
        if typing.get_origin(self.annotation) is Annotated:
            return tuple(self.annotation.__metadata__)
        return ()

    @property
    def base(self) -> Any:
        """The annotation without ``Annotated`` and without ``Optional``/``| None``."""
        hint = self.annotation
        if typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
        if typing.get_origin(hint) in (Union, getattr(types, "UnionType", Union)):
            members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            if len(members) == 1:
                hint = members[0]
        return hint


def _resolve(func: Callable[..., Any], name: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    namespace = dict(getattr(sys.modules.get(func.__module__), "__dict__", {}))
    namespace.update(getattr(func, "__globals__", {}))
    try:
        return eval(raw, namespace)  # noqa: S307 - the function's own annotation text, in its module
    except Exception:
        return raw


@lru_cache(maxsize=4096)
def task_parameters(func: Callable[..., Any], skip_first: bool = False) -> tuple[TaskParameter, ...]:
    """Return the parameters of ``func``; ``skip_first`` drops the echo handle (``self``).

    Annotations are resolved with ``typing.get_type_hints(include_extras=True)``; when that fails
    (a name defined later, under ``TYPE_CHECKING``), each one is resolved on its own, and one that
    still cannot be is kept as its text.
    """
    target = inspect.unwrap(func)
    signature = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:
        hints = {}
    found: list[TaskParameter] = []
    position = 0
    for index, parameter in enumerate(signature.parameters.values()):
        if skip_first and index == 0:
            continue
        annotation = hints.get(parameter.name, _resolve(target, parameter.name, parameter.annotation))
        positional = parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        found.append(TaskParameter(parameter.name, parameter.kind, position if positional else None, parameter.default, annotation))
        if positional:
            position += 1
    return tuple(found)
