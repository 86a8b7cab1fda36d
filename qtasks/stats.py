"""Static stats of an app: ``AsyncStats(app).inspect()`` / ``SyncStats(app).inspect()``."""

from __future__ import annotations

import inspect as pyinspect
import json as jsonlib
from typing import Any

from qtasks._state import kernel_of
from qtasks.kernel.portal import run_blocking

__all__ = ["AsyncStats", "SyncStats", "InspectStats"]


class InspectStats:
    """Describes an app's tasks and plugins (what the original ``InspectStats`` showed)."""

    def __init__(self, app: Any) -> None:
        self._app = kernel_of(app)

    def app(self, json: bool = False) -> Any:
        """The app's name, URL scheme, task count and plugin hooks."""
        app = self._app
        data = {
            "name": app.name,
            "tasks": sorted(app.tasks),
            "plugins": [row.name for row in app.pm.plugin_info() if not row.blocked],
            "hooks": sorted({h for row in app.pm.plugin_info() for h in row.hooks}),
        }
        return jsonlib.dumps(data) if json else data

    def task(self, task_name: str, json: bool = False) -> Any:
        """One task's options and signature."""
        definition = self._app.tasks.get(task_name)
        if definition is None:
            raise KeyError(f"unknown task {task_name!r}; registered: {', '.join(sorted(self._app.tasks))}")
        data = {
            "name": definition.name, "priority": definition.priority, "description": definition.description,
            "tags": definition.tags, "awaiting": definition.awaiting, "generating": definition.generating,
            "echo": definition.echo, "retry": definition.retry, "max_time": definition.max_time,
            "signature": str(pyinspect.signature(definition.func)), "options": {k: repr(v) for k, v in definition.options.items()},
        }
        return jsonlib.dumps(data) if json else data

    def tasks(self, *tasks: str, json: bool = False) -> Any:
        """Several tasks (all when none is named)."""
        data = [self.task(name) for name in (tasks or sorted(self._app.tasks))]
        return jsonlib.dumps(data) if json else data


class AsyncStats:
    """``await AsyncStats(app).inspect()`` fires ``qtasks_stats_inspected`` and returns an :class:`InspectStats`."""

    def __init__(self, app: Any, plugins: Any = None) -> None:
        self.app = kernel_of(app)

    async def inspect(self) -> InspectStats:
        """Fire ``qtasks_stats_inspected`` and return the inspector."""
        await self.app.dispatcher.notify("qtasks_stats_inspected", app=self.app, stats=self)
        return InspectStats(self.app)


class SyncStats(AsyncStats):
    """The blocking form of :class:`AsyncStats`."""

    def inspect(self) -> InspectStats:  # type: ignore[override]
        """Fire ``qtasks_stats_inspected`` and return the inspector."""
        return run_blocking(self.app, AsyncStats.inspect, self)
