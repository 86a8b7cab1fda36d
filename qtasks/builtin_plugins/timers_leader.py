"""The timers' leader: one process per app holds a lease and enqueues each due tick exactly once."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import anyio

from qtasks.builtin_plugins.timers_schedule import AppSchedules, Schedule, TickPlan, parse_tick, plan_tick
from qtasks.errors import SerializationError
from qtasks.kernel.global_config import same_value

__all__ = [
    "LEASE_SECONDS", "RENEW_EVERY", "MAX_TICKS_PER_WAKE", "STEP_TIMEOUT", "LEADER_KEY", "CURRENT_TICK",
    "leader_name", "ticks_name", "utc_now", "LeaderLease", "fire_due", "run_schedules",
]

log = logging.getLogger("qtasks.timers")
LEASE_SECONDS = 4.0  # a leader that stops renewing is replaced this long after its last renewal
RENEW_EVERY = 1.0  # the leader renews its lease, and each standby looks at it, this often
MAX_TICKS_PER_WAKE = 100  # ticks of one schedule handled before the lease is renewed again
STEP_TIMEOUT = 10.0  # seconds a claim-and-enqueue step may take once started (shielded from cancellation)
LEADER_KEY = "leader"
CURRENT_TICK: ContextVar[dict[str, str] | None] = ContextVar("qtasks_timer_tick", default=None)


def leader_name(app: Any) -> str:
    """The global-config name of ``app``'s timer lease (key ``"leader"``: ``{"owner", "until"}``)."""
    return f"qtasks:timers-leader:{app.name}"


def ticks_name(app: Any) -> str:
    """The global-config name of ``app``'s ticks: schedule name -> last fire time handled (ISO 8601)."""
    return f"qtasks:timers:{app.name}"


class LeaderLease:
    """A lease in the global config that one owner at a time holds, renewed with ``compare_and_swap``.

    Args:
        config: The app's global config component.
        name: The global-config name of the lease.
        owner: Who asks (a worker id or a timer id; it names the host and the pid).
        clock: The epoch clock (injected by tests).
    """

    def __init__(self, config: Any, name: str, owner: str, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.name = name
        self.owner = owner
        self.clock = clock
        self.held: dict[str, Any] | None = None  # the value this owner last wrote
        self.until = 0.0

    @property
    def leading(self) -> bool:
        """Whether this owner holds the lease, as far as its own clock tells."""
        return self.held is not None and self.clock() < self.until

    async def hold(self) -> bool:
        """Take the lease when it is free, expired or ours, and renew it; return whether we lead."""
        now = self.clock()
        current = await self.config.get(self.name, LEADER_KEY)
        if current is not None and not self._mine(current) and self._alive(current, now):
            self.held, self.until = None, 0.0
            return False
        mine = {"owner": self.owner, "until": now + LEASE_SECONDS}
        before = await self.config.compare_and_swap(self.name, LEADER_KEY, current, mine)
        if not same_value(before, current):  # another owner wrote in between
            self.held, self.until = None, 0.0
            return False
        self.held, self.until = mine, now + LEASE_SECONDS
        return True

    async def release(self) -> None:
        """Give the lease up (on a graceful stop), so that a standby takes over at once."""
        if self.held is not None:
            held, self.held, self.until = self.held, None, 0.0
            await self.config.compare_and_swap(self.name, LEADER_KEY, held, None)

    def _mine(self, value: Any) -> bool:
        return isinstance(value, dict) and value.get("owner") == self.owner

    @staticmethod
    def _alive(value: Any, now: float) -> bool:
        try:
            return float(value["until"]) > now
        except (TypeError, KeyError, ValueError):
            return False  # not a lease this plugin wrote: take it over


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


async def fire_due(app: Any, schedules: Sequence[Schedule], now: datetime, first_seen: dict[str, datetime]) -> float:
    """Claim and enqueue every tick of ``schedules`` due at ``now``; return the seconds until the
    next tick falls due (``math.inf``: none). ``first_seen`` keeps, by schedule name, when this
    leader first looked at a schedule with no tick yet: its first tick is the trigger's first
    fire time from then.

    Each tick is claimed with ``compare_and_swap(ticks, schedule, last tick, this tick)`` before
    its task is enqueued: of two leaders at once, one wins each tick and the other moves on from
    the tick it lost, so no tick is enqueued twice.
    """
    config = app.global_config.component
    stored = await config.get_all(ticks_name(app))
    soonest = math.inf
    for schedule in schedules:
        since = first_seen.setdefault(schedule.name, now)
        soonest = min(soonest, await _fire_schedule(app, schedule, stored.get(schedule.name), now, since))
    return soonest


async def _fire_schedule(app: Any, schedule: Schedule, previous: Any, now: datetime, since: datetime) -> float:
    """Handle the due ticks of one schedule whose last tick is ``previous``; return the seconds
    until it needs looking at again."""
    for _ in range(MAX_TICKS_PER_WAKE):
        plan = plan_tick(schedule, parse_tick(previous), now, since)
        if plan.claim is None:
            return math.inf if plan.next_due is None else (plan.next_due - now).total_seconds()
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + STEP_TIMEOUT) as step:  # no claim without its task
            previous, again_later = await _take_tick(app, schedule, plan, plan.claim.isoformat(), previous)
        if step.cancelled_caught:
            raise TimeoutError(f"schedule {schedule.name!r}: claiming and enqueuing a tick took more than {STEP_TIMEOUT}s")
        if again_later:
            return RENEW_EVERY
    return 0.0  # more ticks are due: come back after renewing the lease


async def _take_tick(app: Any, schedule: Schedule, plan: TickPlan, tick: str, previous: Any) -> tuple[Any, bool]:
    """Claim ``tick`` (``plan.claim``) and enqueue its task, or record it as skipped; return the
    schedule's last tick now, and whether to try again later (the enqueue failed: the claim was
    given back)."""
    config, name = app.global_config.component, ticks_name(app)
    before = await config.compare_and_swap(name, schedule.name, previous, tick)
    if not same_value(before, previous):  # another leader handled it: go on from its tick
        return before, False
    if not plan.enqueue:
        log.warning("schedule %r: skipped %d tick(s) up to %s: more than %ss late (misfire='skip')",
                    schedule.name, plan.skipped, tick, schedule.misfire_grace)
        return tick, False
    if await _enqueue(app, schedule, tick):
        return tick, False
    await config.compare_and_swap(name, schedule.name, tick, previous)  # give it back
    return previous, True


async def _enqueue(app: Any, schedule: Schedule, tick: str) -> bool:
    """Enqueue the task of one claimed tick; False when it should be tried again."""
    marker = CURRENT_TICK.set({"schedule": schedule.name, "tick": tick})
    try:
        task = await app.add_task(schedule.task_name, *schedule.args, priority=schedule.priority, **schedule.kwargs)
    except (SerializationError, TypeError, ValueError) as error:  # it would fail every time: drop this tick
        log.error("schedule %r: tick %s dropped: its task cannot be enqueued (%s: %s); fix the schedule's arguments",
                  schedule.name, tick, type(error).__name__, error)
        return True
    except Exception as error:  # the broker is away: the tick is given back and tried again
        log.error("schedule %r: enqueuing tick %s failed (%s: %s); trying again", schedule.name, tick, type(error).__name__, error)
        return False
    finally:
        CURRENT_TICK.reset(marker)
    log.debug("schedule %r: tick %s enqueued as task %s", schedule.name, tick, task.uuid if task is not None else None)
    return True


async def run_schedules(app: Any, owner: str, registry: AppSchedules) -> None:
    """Run ``registry``'s schedules of ``app`` as ``owner`` until cancelled: while it holds the
    lease, enqueue each due tick; otherwise stand by, looking at the lease every ``RENEW_EVERY``."""
    await app.start()
    lease = LeaderLease(app.global_config.component, leader_name(app), owner)
    renew_at = 0.0
    failures = 0
    first_seen: dict[str, datetime] = {}
    try:
        while True:
            if not registry.schedules:  # nothing to run (yet): do not compete for the lease
                await anyio.sleep(RENEW_EVERY)
                continue
            wait = RENEW_EVERY
            try:
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + RENEW_EVERY
                    await _hold(lease)
                if lease.leading:
                    wait = await fire_due(app, registry.schedules, utc_now(), first_seen)
            except Exception as error:  # the global config (or the broker) is away: keep trying
                failures += 1
                if failures == 1:
                    log.error("timers: running the schedules failed (%s: %s); retrying every %ss", type(error).__name__, error, RENEW_EVERY)
            else:
                failures = 0
            await anyio.sleep(max(0.0, min(wait, renew_at - time.monotonic())))
    finally:
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + STEP_TIMEOUT):
            try:
                await lease.release()
            except Exception as error:  # the lease runs out by itself
                log.warning("timers: could not release the leader lease (%s); it expires in %ss", error, LEASE_SECONDS)


async def _hold(lease: LeaderLease) -> None:
    """Take or renew the lease, logging when leadership changes hands."""
    was_leading = lease.held is not None
    leading = await lease.hold()
    if leading and not was_leading:
        log.info("timers: %s leads: it enqueues the ticks of this app", lease.owner)
    elif was_leading and not leading:
        log.warning("timers: %s lost the leader lease; it stands by", lease.owner)
