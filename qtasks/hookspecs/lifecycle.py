"""Component lifecycle hooks: startup, shutdown, ping, flush, global-config reads and writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtasks.hookspecs import COMPONENTS, trigger
from qtasks.kernel.model import ConfigEntry

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = [
    "qtasks_startup",
    "qtasks_shutdown",
    "qtasks_pinged",
    "qtasks_flushed",
    "qtasks_global_config_set",
    "qtasks_global_config_read",
    "qtasks_stats_inspected",
]


@trigger("notify", COMPONENTS)
async def qtasks_startup(app: AsyncQueueTasks, component: str) -> None:
    """A component has started: ``component`` is app, broker, storage, global_config or worker.

    Fired by the app (app, broker, storage, global_config, in that order) the first time it is
    used, and by the worker (worker) when it starts claiming. Notify: errors are logged.
    """


@trigger("notify", COMPONENTS, reverse=True)
async def qtasks_shutdown(app: AsyncQueueTasks, component: str) -> None:
    """A component is about to stop; implementations run in the reverse of their startup order.

    Fired by the worker (worker) once it drained, then by the app (global_config, storage,
    broker, app) when its components stop: when ``serve()`` returns, or in ``app.stop()`` when no
    worker serves. Notify: errors are logged.
    """


@trigger("notify", {"app"})
async def qtasks_pinged(app: AsyncQueueTasks, alive: bool) -> None:
    """``app.ping()`` ran; ``alive`` is its answer. Fired by the app. Notify."""


@trigger("notify", {"app", "broker", "storage"})
async def qtasks_flushed(app: AsyncQueueTasks, component: str) -> None:
    """``app.flush_all()`` emptied ``component`` (broker or storage). Fired by the app. Notify."""


@trigger("pipe", {"global_config"}, value="entry", value_type=ConfigEntry)
async def qtasks_global_config_set(app: AsyncQueueTasks, entry: ConfigEntry) -> ConfigEntry | None:
    """A value is about to be written to ``app.global_config``.

    Fired by the app's global config facade before the write. Pipe: return a new
    :class:`ConfigEntry` to change the name, key or value written.
    """


@trigger("pipe", {"global_config"}, value="value")
async def qtasks_global_config_read(app: AsyncQueueTasks, name: str, key: str | None, value: Any) -> Any:
    """A value was read from ``app.global_config`` (``key`` None for get_all / get_match).

    Fired by the global config facade after the read. Pipe: a non-None return replaces the value.
    """


@trigger("notify", {"app"})
async def qtasks_stats_inspected(app: AsyncQueueTasks, stats: Any) -> None:
    """``Stats.inspect()`` ran; ``stats`` is the stats object. Fired by the stats facade. Notify."""
