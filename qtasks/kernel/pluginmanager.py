"""The plugin manager: pluggy's registry plus qtasks' registration checks, builtins, entry points."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import attrs
import pluggy

from qtasks.errors import PluginError, close_matches
from qtasks.hookspecs import PROJECT, SPEC_MODULES, Trigger
from qtasks.kernel.triggers import Dispatcher

__all__ = ["PluginInfo", "QtasksPluginManager", "ENTRY_POINT_GROUP", "env_flag", "env_list"]

log = logging.getLogger("qtasks.plugins")
ENTRY_POINT_GROUP = "qtasks"
BUILTINS_MODULE = "qtasks.builtin_plugins"  # found by name: the kernel imports no builtin


def env_flag(name: str) -> bool:
    """Read a boolean environment variable: unset, empty, 0, false, no and off are false."""
    return os.environ.get(name, "").strip().lower() not in {"", "0", "false", "no", "off"}


def env_list(name: str) -> list[str]:
    """Read a comma-separated environment variable into a list of stripped, non-empty names."""
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


@attrs.frozen
class PluginInfo:
    """One row of ``qtasks plugins list``."""

    name: str
    origin: str
    component: str | None
    hooks: tuple[str, ...]
    source: str
    blocked: bool = False


def _source_of(plugin: Any) -> str:
    target = getattr(plugin, "__qtasks_origin__", plugin)
    if inspect.ismodule(target):
        return target.__name__
    cls = target if inspect.isclass(target) else type(target)
    return f"{cls.__module__}.{cls.__qualname__}"


class QtasksPluginManager(pluggy.PluginManager):
    """pluggy's manager with checks at registration and a cached async dispatcher.

    Registration rejects, with a message naming the fix: an implementation of an unknown hook,
    an ``async def`` implementation of a sync-only hook, a wrapper on an async hook, and
    implementation parameters with defaults or keyword-only parameters.
    """

    def __init__(self, on_error: Any) -> None:
        super().__init__(PROJECT)
        self.specs: dict[str, Trigger] = {}
        for module_name in SPEC_MODULES:
            module = importlib.import_module(module_name)
            self.add_hookspecs(module)
            for attr in dir(module):
                spec = getattr(getattr(module, attr), "qtasks_trigger", None)
                if attr.startswith("qtasks_") and spec is not None:
                    self.specs[attr] = spec
        self.dispatcher = Dispatcher(self, on_error)
        self.dispatcher.specs = self.specs
        self.origins: dict[str, tuple[str, str | None]] = {}
        self.blocked_builtins: dict[str, Any] = {}
        self.blocked_entry_points: dict[str, metadata.EntryPoint] = {}

    # -- registration -------------------------------------------------------------------------

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register ``plugin`` after checking every hook it implements (see the class docstring)."""
        if inspect.isclass(plugin) and not hasattr(plugin, "__qtasks_origin__"):
            if any(self.parse_hookimpl_opts(plugin, a) for a in dir(plugin) if a.startswith("qtasks_")):
                raise PluginError(f"{plugin.__name__} is a class: register an instance ({plugin.__name__}())")
        self._check_plugin(plugin)
        registered = super().register(plugin, name)
        self.dispatcher.invalidate()
        return registered

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        """Unregister a plugin by object or name and drop the cached chains."""
        removed = super().unregister(plugin, name)
        if removed is not None:
            self.origins.pop(self.get_name(removed) or name or "", None)
        self.dispatcher.invalidate()
        return removed

    def _check_plugin(self, plugin: Any) -> None:
        label = getattr(plugin, "__name__", type(plugin).__name__)
        for attr in dir(plugin):
            if not attr.startswith("qtasks_"):
                continue
            opts = self.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            spec = self.specs.get(opts.get("specname") or attr)
            if spec is None:
                raise PluginError(
                    f"{label}.{attr} implements no qtasks hook{close_matches(attr, self.specs)}; "
                    "see `qtasks -A m:app plugins hooks` for the list"
                )
            func = getattr(plugin, attr)
            if not spec.is_async and inspect.iscoroutinefunction(func):
                raise PluginError(f"{label}.{attr} is async but {attr} is sync-only: make it a plain def")
            if spec.is_async and (opts.get("wrapper") or opts.get("hookwrapper")):
                raise PluginError(
                    f"{label}.{attr}: wrappers cannot see async work; implement qtasks_task_scope instead"
                )
            for param in inspect.signature(func).parameters.values():
                if param.kind is param.KEYWORD_ONLY or param.default is not param.empty:
                    raise PluginError(
                        f"{label}.{attr}: parameter {param.name!r} has a default or is keyword-only; hooks "
                        "are called with the spec's arguments only: remove the default"
                    )

    def register_as(self, plugin: Any, name: str, origin: str, component: str | None = None) -> str:
        """Register ``plugin`` under ``name`` and remember where it came from for listings."""
        if self.is_blocked(name):
            raise PluginError(f"plugin name {name!r} is blocked (disable_plugins / QTASKS_DISABLE_PLUGINS): register it under another name")
        if self.has_plugin(name):
            raise PluginError(f"a plugin named {name!r} is already registered: give this one another name")
        self.register(plugin, name)
        self.origins[name] = (origin, component)
        return name

    # -- loading -------------------------------------------------------------------------------

    def load_builtins(self, blocked: Iterable[str]) -> None:
        """Register every builtin plugin by its short name, except the blocked ones."""
        blocked = set(blocked)
        default_plugins: dict[str, str] = importlib.import_module(BUILTINS_MODULE).DEFAULT_PLUGINS
        unknown = blocked - set(default_plugins)
        if unknown:
            unknown -= {n for n, _ in self._entry_points()}
        if unknown:
            name = sorted(unknown)[0]
            raise PluginError(
                f"cannot disable unknown plugin {name!r}{close_matches(name, default_plugins)}; "
                f"builtins are: {', '.join(default_plugins)}"
            )
        for name, module_path in default_plugins.items():
            if name in blocked:
                self.set_blocked(name)
                self.blocked_builtins[name] = importlib.import_module(module_path)
                continue
            self.register_as(importlib.import_module(module_path), name, "builtin")

    def _entry_points(self) -> list[tuple[str, metadata.EntryPoint]]:
        return [(ep.name, ep) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]

    def load_entry_points(self, blocked: Iterable[str]) -> None:
        """Register third-party plugins of the ``qtasks`` entry-point group, except blocked ones."""
        blocked = set(blocked)
        for name, ep in self._entry_points():
            if name in blocked:
                self.set_blocked(name)
                self.blocked_entry_points[name] = ep
                continue
            if self.has_plugin(name):
                continue
            try:
                plugin = ep.load()
                if inspect.isclass(plugin):
                    plugin = plugin()
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ep.value
                self.register_as(plugin, name, f"entry point ({dist})")
            except Exception as error:  # one broken distribution must not stop every app
                log.error("plugin entry point %r (%s) failed to load: %s", name, ep.value, error)

    # -- introspection -------------------------------------------------------------------------

    def hooks_of(self, plugin: Any) -> tuple[str, ...]:
        """Return the short names of the hooks ``plugin`` implements."""
        return tuple(sorted(c.name.removeprefix("qtasks_") for c in self.get_hookcallers(plugin) or ()))

    def plugin_info(self) -> list[PluginInfo]:
        """Describe every registered plugin, then every blocked builtin."""
        rows = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:  # pluggy keeps a blocked name as a None plugin
                continue
            origin, component = self.origins.get(name, ("user", None))
            rows.append(PluginInfo(name, origin, component, self.hooks_of(plugin), _source_of(plugin)))
        for name, module in self.blocked_builtins.items():
            hooks = tuple(sorted(a.removeprefix("qtasks_") for a in dir(module) if a.startswith("qtasks_")))
            rows.append(PluginInfo(name, "builtin", None, hooks, module.__name__, blocked=True))
        for name, ep in self.blocked_entry_points.items():
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ep.value
            rows.append(PluginInfo(name, f"entry point ({dist})", None, (), ep.value, blocked=True))
        return rows
