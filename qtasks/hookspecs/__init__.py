"""Hook markers, trigger metadata and the list of hookspec modules, grouped by lifecycle phase."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import pluggy

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "Trigger",
    "trigger",
    "SPEC_MODULES",
    "SYNC_MODES",
    "ASYNC_MODES",
    "COMPONENTS",
]

PROJECT = "qtasks"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

SYNC_MODES = frozenset({"make", "register"})
ASYNC_MODES = frozenset({"notify", "first", "pipe", "scope"})
COMPONENTS = frozenset({"app", "worker", "broker", "storage", "global_config"})
SPEC_MODULES = (
    "qtasks.hookspecs.bootstrap",
    "qtasks.hookspecs.components",
    "qtasks.hookspecs.lifecycle",
    "qtasks.hookspecs.producer",
    "qtasks.hookspecs.worker",
)

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class Trigger:
    """How the kernel calls a hook.

    Attributes:
        mode: ``make`` (sync, first non-None), ``register`` (sync, all), ``notify`` (async, all,
            errors logged), ``first`` (async, first non-None), ``pipe`` (async, each non-None
            return replaces ``value``) or ``scope`` (async context managers around a step).
        fired_by: The components that fire it; ``add_plugin(component=...)`` checks against this.
        value: For pipes, the argument whose value a return replaces.
        value_type: For pipes, the type a replacement must have.
        reverse: Call implementations in reverse order (shutdown).
    """

    mode: str
    fired_by: frozenset[str]
    value: str | None = None
    value_type: Any = None
    reverse: bool = False

    @property
    def is_async(self) -> bool:
        """True for hooks the kernel awaits (implementations may be ``async def``)."""
        return self.mode in ASYNC_MODES


def trigger(
    mode: str,
    fired_by: set[str] | frozenset[str],
    *,
    value: str | None = None,
    value_type: Any = None,
    reverse: bool = False,
) -> Callable[[F], F]:
    """Mark a function as a qtasks hookspec and attach its :class:`Trigger` metadata."""
    if mode not in SYNC_MODES | ASYNC_MODES:
        raise ValueError(f"unknown trigger mode {mode!r}")

    def mark(func: F) -> F:
        func.qtasks_trigger = Trigger(mode, frozenset(fired_by), value, value_type, reverse)  # type: ignore[attr-defined]
        return hookspec(firstresult=(mode == "make"))(func)

    return mark
