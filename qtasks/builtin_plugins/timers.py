"""timers: schedules declared on an app run inside its workers; each tick is enqueued once (docs/timers.md)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any
from weakref import WeakKeyDictionary

import attrs

from qtasks._state import kernel_of
from qtasks.builtin_plugins.timers_leader import CURRENT_TICK, run_schedules
from qtasks.builtin_plugins.timers_schedule import DEFAULT_GRACE, MISFIRE_POLICIES, AppSchedules, Schedule
from qtasks.errors import ConfigurationError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import TaskCall

__all__ = ["TIMER_EXTRA", "schedules_of", "add_schedule", "check_enabled", "qtasks_worker_services", "qtasks_task_prepare"]

TIMER_EXTRA = "timer"  # the extra field of a tick's task: {"schedule": name, "tick": ISO fire time}

_SCHEDULES: WeakKeyDictionary[Any, AppSchedules] = WeakKeyDictionary()


def check_enabled(app: Any) -> Any:
    """Return the kernel of ``app`` (a sync or async app).

    Raises:
        ConfigurationError: the ``timers`` plugin is disabled, naming the fix.
    """
    kernel = kernel_of(app)
    if "timers" in kernel.pm.blocked_builtins or kernel.pm.get_plugin("timers") is None:
        raise ConfigurationError(
            f"app {kernel.name!r}: timers need the builtin 'timers' plugin, which is disabled: remove 'timers' from disable_plugins "
            "(or QTASKS_DISABLE_PLUGINS)"
        )
    return kernel


def schedules_of(app: Any) -> AppSchedules:
    """The schedules declared on ``app`` (made on first use; a worker starting after that runs them)."""
    kernel = kernel_of(app)
    registry = _SCHEDULES.get(kernel)
    if registry is None:
        registry = _SCHEDULES[kernel] = AppSchedules()
    return registry


def add_schedule(
    app: Any, task_name: str, trigger: Any, args: tuple[Any, ...] | list[Any] = (), kwargs: Mapping[str, Any] | None = None,
    priority: int | None = None, misfire: str = "skip", misfire_grace: float = DEFAULT_GRACE, name: str | None = None,
) -> Schedule:
    """Check a schedule and declare it on ``app``; every worker of the app (and a timer's
    ``run_forever``) runs it. See ``qtasks.timers.schedule`` for the arguments.

    Raises:
        ConfigurationError: the plugin is disabled, the task is unknown, or a value is wrong,
            each naming the fix (``TypeError``/``ValueError`` for wrong argument types and values).
    """
    kernel = check_enabled(app)
    if not isinstance(task_name, str) or task_name not in kernel.tasks:
        known = ", ".join(sorted(kernel.tasks)) or "none"
        raise ConfigurationError(
            f"timer: app {kernel.name!r} has no task named {task_name!r} (registered: {known}); define it with @app.task "
            "before scheduling it, or fix the name"
        )
    if not callable(getattr(trigger, "get_next_fire_time", None)):
        raise TypeError(
            f"timer {task_name!r}: trigger must be an APScheduler 3.x trigger, e.g. IntervalTrigger(seconds=10) or "
            f"CronTrigger(minute='*/5') from apscheduler.triggers, got {trigger!r}"
        )
    if misfire not in MISFIRE_POLICIES:
        raise ValueError(f"timer {task_name!r}: misfire={misfire!r}: use 'skip' (drop late ticks) or 'catch_up' (enqueue each missed tick)")
    if isinstance(misfire_grace, bool) or not isinstance(misfire_grace, (int, float)) or not misfire_grace >= 0:
        raise ValueError(f"timer {task_name!r}: misfire_grace={misfire_grace!r}: use a number of seconds >= 0")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise TypeError(f"timer {task_name!r}: priority must be an int (lower runs first) or None, got {priority!r}")
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, (Mapping, type(None))):
        raise TypeError(f"timer {task_name!r}: args must be a tuple and kwargs a dict, got {type(args).__name__} and {type(kwargs).__name__}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"timer {task_name!r}: name must be a non-empty string, got {name!r}")
    schedule = Schedule(
        name=name or f"{task_name}@{trigger}", task_name=task_name, trigger=trigger, args=tuple(args), kwargs=dict(kwargs or {}),
        priority=priority, misfire=misfire, misfire_grace=float(misfire_grace),
    )
    schedules_of(kernel).add(schedule)
    return schedule


@hookimpl
def qtasks_worker_services(worker: Any) -> Any:
    """Run the app's schedules in every worker: the one holding the leader lease enqueues the ticks."""
    registry = _SCHEDULES.get(worker.app)
    if registry is None:  # no timer was ever made for this app: no service, no lease
        return None
    return partial(run_schedules, worker.app, worker.worker_id, registry)


@hookimpl
def qtasks_task_prepare(call: TaskCall) -> TaskCall | None:
    """Mark the task of a timer tick: ``extra["timer"] = {"schedule": name, "tick": fire time}``."""
    tick = CURRENT_TICK.get()
    if tick is None:
        return None
    return attrs.evolve(call, extra={**call.extra, TIMER_EXTRA: tick})
