"""HookRecorder: a plugin that records every async hook call on an app and changes nothing."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qtasks.hookspecs import SPEC_MODULES, hookimpl

__all__ = ["HookRecorder", "recording_hooks"]


class HookRecorder:
    """A plugin that implements every async hook, records each call and changes nothing.

    Register it with ``app.add_plugin(recorder)`` (or use :func:`recording_hooks`);
    ``names()`` lists the hooks fired, in order.

    Args:
        specs: The app's hook specs (``app.pm.specs``).
        only: Record these hooks only (full names); default: every async hook.
    """

    name = "hook_recorder"

    def __init__(self, specs: dict[str, Any], only: set[str] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for module_name in SPEC_MODULES:
            module = importlib.import_module(module_name)
            for hook, spec in specs.items():
                spec_function = getattr(module, hook, None)
                if spec_function is None or not spec.is_async or (only and hook not in only):
                    continue
                setattr(self, hook, self._recorder(hook, spec_function))

    def _recorder(self, hook: str, spec_function: Any) -> Any:
        @functools.wraps(spec_function)
        def record(*args: Any) -> None:
            argnames = spec_function.__code__.co_varnames[: spec_function.__code__.co_argcount]
            self.calls.append((hook, dict(zip(argnames, args))))

        return hookimpl(tryfirst=True)(record)

    def names(self, prefix: str = "qtasks_") -> list[str]:
        """The short names of the hooks fired so far, in order."""
        return [hook.removeprefix(prefix) for hook, _ in self.calls]

    def of(self, hook: str) -> list[dict[str, Any]]:
        """The arguments of every call of ``hook`` (short or full name)."""
        full = hook if hook.startswith("qtasks_") else f"qtasks_{hook}"
        return [args for name, args in self.calls if name == full]

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        self.calls.clear()


@contextmanager
def recording_hooks(app: Any, only: set[str] | None = None) -> Iterator[HookRecorder]:
    """``with recording_hooks(app) as hooks:`` registers a :class:`HookRecorder` on ``app`` (a
    sync or async app) for the block, then removes it."""
    recorder = HookRecorder(app.pm.specs, only)
    name = app.add_plugin(recorder)
    try:
        yield recorder
    finally:
        app.remove_plugin(name)
