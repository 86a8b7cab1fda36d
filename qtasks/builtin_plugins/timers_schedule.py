"""A timer schedule and its fire times: which tick is due now, under the misfire policy."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["MISFIRE_POLICIES", "DEFAULT_GRACE", "MAX_SKIP_STEPS", "Schedule", "AppSchedules", "TickPlan", "plan_tick", "parse_tick"]

MISFIRE_POLICIES = ("skip", "catch_up")
DEFAULT_GRACE = 1.0  # seconds a tick may be late and still be enqueued under "skip"
MAX_SKIP_STEPS = 10_000  # late fire times walked over one by one when skipping; beyond, skip to now


@attrs.frozen(kw_only=True)
class Schedule:
    """One task enqueued on every fire time of an APScheduler trigger.

    Attributes:
        name: The schedule's id: its key in the global config, the same in every process.
        task_name: The task enqueued on each tick.
        trigger: The APScheduler 3.x trigger (``IntervalTrigger``, ``CronTrigger``, ...).
        args: Positional arguments of each task.
        kwargs: Keyword arguments of each task.
        priority: The tasks' priority; None: the task's own.
        misfire: ``"skip"`` or ``"catch_up"`` (see docs/timers.md).
        misfire_grace: Under ``"skip"``, how many seconds late a tick may be and still run.
    """

    name: str
    task_name: str
    trigger: Any
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    priority: int | None = None
    misfire: str = "skip"
    misfire_grace: float = DEFAULT_GRACE


class AppSchedules:
    """The schedules of one app; replaced as a whole on each change, so a runner on another
    thread always reads a consistent tuple."""

    def __init__(self) -> None:
        self.schedules: tuple[Schedule, ...] = ()

    def add(self, schedule: Schedule) -> None:
        """Add ``schedule``; its name must be new.

        Raises:
            ValueError: a schedule of that name exists, naming the fix.
        """
        for known in self.schedules:
            if known.name == schedule.name:
                raise ValueError(
                    f"timer: a schedule named {schedule.name!r} exists already ({known.task_name!r} on {known.trigger}): "
                    "give each schedule its own name= (the name keys its ticks in the global config)"
                )
        self.schedules = (*self.schedules, schedule)


@attrs.frozen
class TickPlan:
    """What a leader does next for one schedule.

    Attributes:
        claim: The fire time to record as the schedule's last tick now (None: nothing yet).
        enqueue: Whether that tick gets a task (False: it is recorded as skipped).
        skipped: How many ticks ``claim`` stands for when it skips (the late ones).
        next_due: When the next tick falls due, when nothing is to be claimed now; None
            with no claim means the trigger has no more fire times.
    """

    claim: datetime | None
    enqueue: bool = False
    skipped: int = 0
    next_due: datetime | None = None


def parse_tick(stored: Any) -> datetime | None:
    """The fire time of a stored tick (an ISO 8601 string), or None when absent or unreadable."""
    if not isinstance(stored, str):
        return None
    try:
        parsed = datetime.fromisoformat(stored)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def plan_tick(schedule: Schedule, previous: datetime | None, now: datetime, since: datetime | None = None) -> TickPlan:
    """Decide the next step of ``schedule`` after its last tick ``previous``, at ``now``.

    The next fire time is ``trigger.get_next_fire_time(previous, now)``; with no tick yet
    (``previous`` None), the trigger's first fire time from ``since`` (when the leader first
    looked at the schedule; default ``now``): asked from ``now`` each time, it would always be
    in the future. In the future: wait for it. Due and at most ``misfire_grace`` late, or under ``"catch_up"``: claim and enqueue it.
    Later than that under ``"skip"``: claim, without a task, the last fire time that is too
    late, so the next plan starts from the first one on time.
    """
    trigger = schedule.trigger
    fire = trigger.get_next_fire_time(previous, now if previous is not None or since is None else since)
    if fire is None:
        return TickPlan(None)
    if fire > now:
        return TickPlan(None, next_due=fire)
    if schedule.misfire == "catch_up" or (now - fire).total_seconds() <= schedule.misfire_grace:
        return TickPlan(fire, enqueue=True)
    skipped = 1
    for _ in range(MAX_SKIP_STEPS):  # bounded: a cron trigger takes ~50 µs a step, on the event loop
        following = trigger.get_next_fire_time(fire, now)
        if following is None or (now - following).total_seconds() <= schedule.misfire_grace:
            return TickPlan(fire, skipped=skipped)
        fire, skipped = following, skipped + 1
    return _skip_from_now(schedule, fire, skipped, now)


def _skip_from_now(schedule: Schedule, fire: datetime, skipped: int, now: datetime) -> TickPlan:
    """After more than ``MAX_SKIP_STEPS`` missed ticks: skip them all by claiming ``now``, so the
    schedule goes on from the trigger's first fire time after now."""
    return TickPlan(max(fire, now), skipped=skipped)
