"""pytest plugin (``pytest11`` entry point): a hook recorder and an in-memory app with a worker."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from qtasks.hookspecs import SPEC_MODULES, hookimpl

__all__ = ["HookRecorder", "running_worker", "hook_recorder"]


class HookRecorder:
    """A plugin that implements every async hook, records each call and changes nothing.

    Register it with ``app.add_plugin(recorder)``; ``names()`` lists the hooks fired, in order.
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


class running_worker:  # noqa: N801 - used as a context manager, like a function
    """``async with running_worker(app):`` serves ``app`` in the background and stops it after.

    Args:
        app: An async app (``qtasks.asyncio.QueueTasks``).
        concurrency: The worker's concurrency (default: the app's config).
    """

    def __init__(self, app: Any, concurrency: int | None = None) -> None:
        self.app = app
        self.concurrency = concurrency
        self._group: Any = None

    async def __aenter__(self) -> Any:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self.app.serve, self.concurrency, False)
        while self.app.worker is None:  # serve() sets it synchronously on its first step
            await anyio.sleep(0)
        return self.app.worker

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        await self.app.stop()
        return await self._group.__aexit__(*exc_info)


@pytest.fixture
def hook_recorder() -> Iterator[type[HookRecorder]]:
    """The :class:`HookRecorder` class: ``recorder = hook_recorder(app.pm.specs)``."""
    yield HookRecorder
