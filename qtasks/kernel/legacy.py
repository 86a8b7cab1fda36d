"""``add_plugin`` selection: hookimpl objects, narrowed by trigger names and component."""

from __future__ import annotations

import types
from typing import Any

from qtasks.errors import PluginError, close_matches
from qtasks.hookspecs import Trigger

__all__ = ["plugin_for", "hook_name"]


def hook_name(name: str, specs: dict[str, Trigger]) -> str:
    """Resolve a trigger name (``task_prepare`` or ``qtasks_task_prepare``) to a hook name."""
    full = name if name.startswith("qtasks_") else f"qtasks_{name}"
    if full in specs:
        return full
    raise PluginError(f"unknown trigger name {name!r}{close_matches(full, specs)}; valid names: {', '.join(sorted(specs))}")


def plugin_for(plugin: Any, trigger_names: list[str] | None, component: str | None, specs: dict[str, Trigger]) -> tuple[Any, str]:
    """Return the object to register for ``plugin`` and its kind (``hookimpl`` or ``legacy``)."""
    implemented = [a for a in dir(plugin) if a.startswith("qtasks_") and hasattr(getattr(plugin, a), "qtasks_impl")]
    if not implemented:
        raise PluginError(f"{type(plugin).__name__} has no @hookimpl methods and no trigger(name, **kwargs) method")
    wanted = [hook_name(n, specs) for n in trigger_names] if trigger_names else implemented
    for hook in wanted:
        if hook not in implemented:
            raise PluginError(f"{type(plugin).__name__} does not implement {hook}; it implements: {', '.join(implemented)}")
        if component is not None and component not in specs[hook].fired_by:
            valid = sorted(h for h in implemented if component in specs[h].fired_by)
            raise PluginError(f"{hook} is not fired by component {component!r}; hooks it fires here: {', '.join(valid) or 'none'}")
    if trigger_names is None:
        return plugin, "hookimpl"
    view = types.SimpleNamespace(**{hook: getattr(plugin, hook) for hook in wanted})
    view.__qtasks_origin__ = plugin
    return view, "hookimpl"
