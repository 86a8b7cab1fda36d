"""``add_plugin`` selection: hookimpl objects and original-style ``trigger(name, **kwargs)`` plugins."""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from qtasks.errors import PluginError, close_matches
from qtasks.hookspecs import SPEC_MODULES, Trigger, hookimpl
from qtasks.kernel.legacy_convert import HookCall, LegacyTrigger
from qtasks.kernel.legacy_table import LEGACY_TRIGGERS

__all__ = ["plugin_for", "hook_name", "legacy_selection", "LegacyAdapter", "LEGACY_TRIGGERS", "LegacyTrigger"]

_UNSET: Any = object()


def hook_name(name: str, specs: dict[str, Trigger]) -> str:
    """Resolve a trigger name (``task_prepare``, ``qtasks_task_prepare`` or an original name) to a hook name."""
    full = name if name.startswith("qtasks_") else f"qtasks_{name}"
    if full in specs:
        return full
    if name in LEGACY_TRIGGERS:
        return LEGACY_TRIGGERS[name].hook
    hint = close_matches(full, specs) or close_matches(name, LEGACY_TRIGGERS)
    raise PluginError(f"unknown trigger name {name!r}{hint}; valid names: {', '.join(sorted(specs))} or an original trigger name")


def _component_matches(entry: LegacyTrigger, component: str | None) -> bool:
    """True if ``component`` fires ``entry``: None takes every name, ``app`` the app's own names."""
    if component is None:
        return True
    return entry.component == (None if component == "app" else component)


def legacy_selection(trigger_names: Sequence[str] | None, component: str | None) -> list[LegacyTrigger]:
    """Return the original triggers selected by ``trigger_names`` for ``component``, in table order.

    Args:
        trigger_names: Original trigger names; None means every name ``component`` fires (the
            original's "Globals"), all 56 when ``component`` is None.
        component: ``worker``, ``broker``, ``storage``, ``global_config``, ``app`` or None.

    Raises:
        PluginError: A name is unknown, or ``component`` does not fire it.
    """
    valid = [entry for entry in LEGACY_TRIGGERS.values() if _component_matches(entry, component)]
    if not trigger_names:
        return valid
    wanted = set()
    for name in trigger_names:
        entry = LEGACY_TRIGGERS.get(name)
        if entry is None:
            raise PluginError(
                f"unknown trigger name {name!r}{close_matches(name, LEGACY_TRIGGERS)}; "
                f"valid names: {', '.join(e.name for e in valid)}"
            )
        if not _component_matches(entry, component):
            raise PluginError(
                f"{name} is not fired by component {component!r} (the {entry.component or 'app'} fires it); "
                f"names component {component!r} fires: {', '.join(e.name for e in valid) or 'none'}"
            )
        wanted.add(name)
    return [entry for entry in LEGACY_TRIGGERS.values() if entry.name in wanted]


@functools.cache
def _spec_of(hook: str) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """Return the hookspec function of ``hook`` and its argument names."""
    for module_name in SPEC_MODULES:
        function = getattr(importlib.import_module(module_name), hook, None)
        if function is not None:
            return function, tuple(inspect.signature(function).parameters)
    raise PluginError(f"no hookspec named {hook}")  # pragma: no cover - the table only names real hooks


class LegacyAdapter:
    """Registers an original-style plugin: one implementation per hook, forwarding to ``trigger``.

    Each implementation has its hook's signature, builds the original kwargs for every selected
    name of that hook in turn, calls ``plugin.trigger(name, **kwargs)`` (awaiting it if needed)
    and applies only the keys present in the returned dict. A returned ``plugin_cache`` is kept
    here, per app and plugin, and passed back as the ``plugin_cache`` kwarg on later calls.

    Args:
        plugin: The object with ``trigger(name, **kwargs)``.
        entries: The selected original triggers.
        specs: The hook metadata, by hook name.
    """

    def __init__(self, plugin: Any, entries: Sequence[LegacyTrigger], specs: Mapping[str, Trigger]) -> None:
        self.__qtasks_origin__ = plugin
        self.plugin = plugin
        self.trigger_names = tuple(entry.name for entry in entries)
        self.plugin_cache: Any = _UNSET
        by_hook: dict[str, list[LegacyTrigger]] = {}
        for entry in entries:
            by_hook.setdefault(entry.hook, []).append(entry)
        for hook, selected in by_hook.items():
            setattr(self, hook, self._implementation(hook, tuple(selected), specs[hook]))

    def __repr__(self) -> str:
        return f"<legacy plugin {self.plugin!r}: {', '.join(self.trigger_names)}>"

    def _implementation(self, hook: str, entries: tuple[LegacyTrigger, ...], spec: Trigger) -> Callable[..., Any]:
        """Return the ``@hookimpl`` function of ``hook``, with the hook spec's signature."""
        spec_function, argnames = _spec_of(hook)
        adapter = self

        @functools.wraps(spec_function, updated=())
        async def forward(*values: Any) -> Any:
            call = HookCall(dict(zip(argnames, values)))
            if spec.mode == "scope":
                return adapter.scope(entries, call)
            original = call.args.get(spec.value) if spec.value else None
            await adapter.run([e for e in entries if not e.on_exit], call)
            if spec.mode == "first":
                return call.decision
            if spec.mode == "pipe" and spec.value is not None and call.args[spec.value] is not original:
                return call.args[spec.value]
            return None

        return hookimpl(forward)

    def scope(self, entries: tuple[LegacyTrigger, ...], call: HookCall) -> AbstractAsyncContextManager[None]:
        """Return a context manager forwarding the entering names, and the exiting ones after a success."""

        @asynccontextmanager
        async def around() -> AsyncIterator[None]:
            await self.run([e for e in entries if not e.on_exit], call)
            yield
            await self.run([e for e in entries if e.on_exit], call)

        return around()

    async def run(self, entries: Sequence[LegacyTrigger], call: HookCall) -> None:
        """Forward one hook call to each entry in turn, applying each answer before the next."""
        for entry in entries:
            if call.decision is not None:
                return
            kwargs = entry.build(call)
            if kwargs is None:
                continue
            returned = await self.trigger(entry.name, kwargs)
            if returned and entry.apply is not None:
                call.trigger = entry.name
                entry.apply(call, returned)

    async def trigger(self, name: str, kwargs: dict[str, Any]) -> Mapping[str, Any] | None:
        """Call ``plugin.trigger(name, **kwargs)`` with the cache; return its dict without ``plugin_cache``."""
        if self.plugin_cache is not _UNSET:
            kwargs["plugin_cache"] = self.plugin_cache
        result = self.plugin.trigger(name, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return None
        if not isinstance(result, Mapping):
            raise PluginError(f"{type(self.plugin).__name__}.trigger({name!r}) returned {type(result).__name__}; return a dict or None")
        answer = dict(result)
        if "plugin_cache" in answer:
            self.plugin_cache = answer.pop("plugin_cache")
        return answer


def _hookimpl_plugin(plugin: Any, implemented: list[str], trigger_names: list[str] | None, component: str | None, specs: dict[str, Trigger]) -> Any:
    """Select the ``@hookimpl`` methods named by ``trigger_names`` (hooks or original names)."""
    originals = [n for n in trigger_names or () if n in LEGACY_TRIGGERS]
    if originals:
        legacy_selection(originals, component)  # an original name must be one ``component`` fires
    wanted = list(dict.fromkeys(hook_name(n, specs) for n in trigger_names)) if trigger_names else implemented
    for hook in wanted:
        if hook not in implemented:
            raise PluginError(f"{type(plugin).__name__} does not implement {hook}; it implements: {', '.join(implemented)}")
        if component is not None and component not in specs[hook].fired_by:
            valid = sorted(h for h in implemented if component in specs[h].fired_by)
            raise PluginError(f"{hook} is not fired by component {component!r}; hooks it fires here: {', '.join(valid) or 'none'}")
    if not trigger_names:
        return plugin
    view = types.SimpleNamespace(**{hook: getattr(plugin, hook) for hook in wanted})
    view.__qtasks_origin__ = plugin
    return view


NO_TRIGGERS = "-"  # the original's ``trigger_names=["-"]``: route no trigger (the plugin runs itself)


def plugin_for(plugin: Any, trigger_names: list[str] | None, component: str | None, specs: dict[str, Trigger]) -> tuple[Any, str]:
    """Return the object to register for ``plugin`` and its kind (``hookimpl`` or ``legacy``).

    Args:
        plugin: An object with ``@hookimpl`` methods, or an original-style object with
            ``trigger(name, **kwargs)`` (sync or async) and no ``@hookimpl`` methods.
        trigger_names: Hooks or original trigger names to take; None means all (for an
            original-style plugin: every original name ``component`` fires). ``["-"]`` (the
            original's way to register a plugin that runs itself) takes a hookimpl plugin's
            hooks as they are, and no trigger of an original-style plugin.
        component: Only what this component fires; None for everything.
        specs: The hook metadata, by hook name.

    Raises:
        PluginError: The object is neither kind, or a name is unknown or not fired by ``component``.
    """
    implemented = [a for a in dir(plugin) if a.startswith("qtasks_") and hasattr(getattr(plugin, a), "qtasks_impl")]
    placeholder = bool(trigger_names) and set(trigger_names) == {NO_TRIGGERS}
    if implemented:
        return _hookimpl_plugin(plugin, implemented, None if placeholder else trigger_names, component, specs), "hookimpl"
    if not callable(getattr(plugin, "trigger", None)):
        raise PluginError(f"{type(plugin).__name__} has no @hookimpl methods and no trigger(name, **kwargs) method")
    return LegacyAdapter(plugin, [] if placeholder else legacy_selection(trigger_names, component), specs), "legacy"
