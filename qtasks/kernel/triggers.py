"""The kernel's own hook dispatcher: walks cached pluggy implementation chains, awaiting inline."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pluggy

from qtasks.errors import ControlFlow, PluginError
from qtasks.hookspecs import Trigger

__all__ = ["Impl", "Dispatcher"]

log = logging.getLogger("qtasks.plugins")

# One implementation: (function, argument names, is a coroutine function, plugin name).
Impl = tuple[Callable[..., Any], tuple[str, ...], bool, str]


class Dispatcher:
    """Calls async hooks in their four modes over implementation chains cached per hook name.

    The cache is dropped whenever the plugin manager registers or unregisters a plugin, so a
    call costs one dict lookup plus the calls themselves; a hook with no implementation
    returns at once.
    """

    def __init__(self, pm: pluggy.PluginManager, on_error: Callable[[BaseException, str], None]) -> None:
        self._pm = pm
        self._on_error = on_error
        self._chains: dict[str, tuple[Impl, ...]] = {}
        self.specs: dict[str, Trigger] = {}

    def invalidate(self) -> None:
        """Forget the cached chains (called on every register and unregister)."""
        self._chains.clear()

    def chain(self, name: str) -> tuple[Impl, ...]:
        """Return the implementations of ``name`` in real call order."""
        try:
            return self._chains[name]
        except KeyError:
            pass
        caller = getattr(self._pm.hook, name)
        impls = [i for i in reversed(caller.get_hookimpls()) if not (i.hookwrapper or i.wrapper)]
        if self.specs[name].reverse:
            impls.reverse()
        built = tuple(
            (i.function, tuple(i.argnames), inspect.iscoroutinefunction(i.function), i.plugin_name)
            for i in impls
        )
        self._chains[name] = built
        return built

    async def notify(self, hook: str, /, **kwargs: Any) -> None:
        """Call every implementation; log and report any error except ``ControlFlow``."""
        chain = self._chains.get(hook)
        if chain is None:
            chain = self.chain(hook)
        for func, argnames, is_async, plugin in chain:
            try:
                result = func(*[kwargs[a] for a in argnames])
                if is_async or (result is not None and inspect.isawaitable(result)):
                    await result
            except ControlFlow:
                raise
            except Exception as error:  # observers never kill tasks
                self._on_error(error, f"{hook} in plugin {plugin!r}")

    async def first(self, hook: str, /, **kwargs: Any) -> Any:
        """Return the first non-None result; errors propagate."""
        chain = self._chains.get(hook)
        if chain is None:
            chain = self.chain(hook)
        for func, argnames, is_async, _plugin in chain:
            result = func(*[kwargs[a] for a in argnames])
            if is_async or (result is not None and inspect.isawaitable(result)):
                result = await result
            if result is not None:
                return result
        return None

    async def pipe(self, hook: str, /, **kwargs: Any) -> Any:
        """Pass the spec's ``value`` argument through every implementation; return the final value."""
        spec = self.specs[hook]
        key = spec.value
        assert key is not None
        chain = self._chains.get(hook)
        if chain is None:
            chain = self.chain(hook)
        for func, argnames, is_async, plugin in chain:
            result = func(*[kwargs[a] for a in argnames])
            if is_async or (result is not None and inspect.isawaitable(result)):
                result = await result
            if result is not None:
                if spec.value_type is not None and not isinstance(result, spec.value_type):
                    raise PluginError(
                        f"plugin {plugin!r} returned {type(result).__name__} from {hook}; return a "
                        f"{spec.value_type.__name__} (attrs.evolve({key}, ...)) or None to keep it"
                    )
                kwargs[key] = result
        return kwargs[key]

    async def scope(self, hook: str, stack: AsyncExitStack, /, **kwargs: Any) -> None:
        """Enter the context managers returned by the implementations onto ``stack``."""
        chain = self._chains.get(hook)
        if chain is None:
            chain = self.chain(hook)
        for func, argnames, is_async, plugin in chain:
            result = func(*[kwargs[a] for a in argnames])
            if is_async:
                result = await result
            if result is None:
                continue
            if hasattr(result, "__aenter__"):
                await stack.enter_async_context(result)
            elif hasattr(result, "__enter__"):
                stack.enter_context(result)
            else:
                raise PluginError(f"plugin {plugin!r} returned {result!r} from {hook}; return a context manager or None")
