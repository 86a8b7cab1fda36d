"""Timers: schedules run by the worker, each tick enqueued once; misfire policies; the leader lease; failover."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from qtasks import QueueTasks as SyncQueueTasks
from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins import timers, timers_schedule
from qtasks.builtin_plugins.timers_leader import LEASE_SECONDS, RENEW_EVERY, LeaderLease, fire_due, leader_name, ticks_name
from qtasks.builtin_plugins.timers_schedule import Schedule, TickPlan, plan_tick
from qtasks.errors import ConfigurationError
from qtasks.testing import running_worker
from qtasks.timers import AsyncTimer, SyncTimer, schedule
from subprocesses import run_example, worker_process

pytestmark = pytest.mark.anyio
WAIT = 10.0
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def every_second() -> IntervalTrigger:
    """Fire times T0, T0 + 1 s, T0 + 2 s, ..."""
    return IntervalTrigger(seconds=1, start_date=T0, timezone=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Enqueued:
    """Records the timer tick of every task enqueued; sets ``reached`` after ``count`` of them."""

    def __init__(self, count: int) -> None:
        self.ticks: list[tuple[str, str, tuple[Any, ...], dict[str, Any], int]] = []
        self.count = count
        self.reached = threading.Event()

    @hookimpl
    def qtasks_task_enqueued(self, task: Any) -> None:
        tick = task.extra["timer"]
        self.ticks.append((tick["schedule"], tick["tick"], task.args, dict(task.kwargs), task.priority))
        if len(self.ticks) >= self.count:
            self.reached.set()


def tick_gaps(ticks: list[str]) -> list[float]:
    times = [datetime.fromisoformat(tick) for tick in ticks]
    return [round((later - earlier).total_seconds(), 6) for earlier, later in zip(times, times[1:])]


# -- fire times and the misfire policies (an injected clock) ---------------------------------------


def test_a_due_tick_within_the_grace_is_enqueued_and_a_future_one_awaited() -> None:
    plan = Schedule(name="s", task_name="t", trigger=every_second())
    assert plan_tick(plan, at(0), at(1.5)) == TickPlan(at(1), enqueue=True)  # 0.5 s late <= 1 s grace
    assert plan_tick(plan, at(1), at(1.5)) == TickPlan(None, next_due=at(2))
    assert plan_tick(plan, None, at(3.5), since=at(2.5)) == TickPlan(at(3), enqueue=True)  # the first tick counts from `since`
    assert plan_tick(plan, None, at(2.5)) == TickPlan(None, next_due=at(3))


def test_skip_drops_the_late_ticks_in_one_claim_and_goes_on_from_the_first_on_time() -> None:
    plan = Schedule(name="s", task_name="t", trigger=every_second(), misfire="skip", misfire_grace=1.0)
    skipping = plan_tick(plan, at(0), at(4.5))  # ticks 1, 2, 3 are 3.5, 2.5, 1.5 s late; tick 4 is 0.5 s late
    assert skipping == TickPlan(at(3), enqueue=False, skipped=3)
    assert plan_tick(plan, at(3), at(4.5)) == TickPlan(at(4), enqueue=True)
    strict = Schedule(name="s", task_name="t", trigger=every_second(), misfire_grace=0)
    assert plan_tick(strict, at(0), at(4.5)) == TickPlan(at(4), skipped=4)  # then tick 5, in the future


def test_skip_after_a_very_long_outage_goes_on_from_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers_schedule, "MAX_SKIP_STEPS", 5)
    plan = Schedule(name="s", task_name="t", trigger=every_second())
    assert plan_tick(plan, at(0), at(100.25)) == TickPlan(at(100.25), skipped=6)
    assert plan_tick(plan, at(100.25), at(100.25)) == TickPlan(None, next_due=at(101.25))


def test_catch_up_enqueues_every_missed_tick_once_in_order() -> None:
    plan = Schedule(name="s", task_name="t", trigger=every_second(), misfire="catch_up")
    previous, enqueued = at(0), []
    while (step := plan_tick(plan, previous, at(4.5))).claim is not None:
        assert step.enqueue
        enqueued.append(step.claim)
        previous = step.claim
    assert enqueued == [at(1), at(2), at(3), at(4)] and step.next_due == at(5)


def test_a_past_date_trigger_is_skipped_once_or_caught_up_once_and_then_ends() -> None:
    once = DateTrigger(run_date=at(0))
    skip = Schedule(name="s", task_name="t", trigger=once)
    assert plan_tick(skip, None, at(60)) == TickPlan(at(0), skipped=1)
    assert plan_tick(Schedule(name="s", task_name="t", trigger=once, misfire="catch_up"), None, at(60)) == TickPlan(at(0), enqueue=True)
    assert plan_tick(skip, at(0), at(60)) == TickPlan(None, next_due=None)  # no more fire times


def test_a_cron_trigger_catches_up_from_its_last_tick() -> None:
    plan = Schedule(name="s", task_name="t", trigger=CronTrigger(minute="*/15", timezone=timezone.utc), misfire="catch_up")
    assert plan_tick(plan, at(0), at(3600)) == TickPlan(at(15 * 60), enqueue=True)
    assert plan_tick(plan, at(45 * 60), at(3600)) == TickPlan(at(3600), enqueue=True)


# -- the leader lease (an injected clock) ---------------------------------------------------------


async def test_the_lease_has_one_holder_until_it_expires_or_is_released(app: QueueTasks) -> None:
    await app.start()
    clock = [1000.0]
    config, name = app.global_config.component, leader_name(app)
    first, second = (LeaderLease(config, name, owner, clock=lambda: clock[0]) for owner in ("host:1:a", "host:2:b"))
    assert await first.hold() is True and first.leading
    assert await second.hold() is False and not second.leading
    clock[0] += LEASE_SECONDS - 0.5
    assert await first.hold() is True  # renewed: valid for LEASE_SECONDS from now
    clock[0] += LEASE_SECONDS - 0.5
    assert await second.hold() is False
    clock[0] += 1.0  # the first holder stopped renewing: its lease ran out
    assert not first.leading
    assert await second.hold() is True and await first.hold() is False
    assert (await config.get(name, "leader"))["owner"] == "host:2:b"
    await second.release()
    assert await config.get(name, "leader") is None
    assert await first.hold() is True  # released: taken at once, no waiting for the expiry


@pytest.mark.parametrize("url", ["memory://", "sqlite:///timers.sqlite3"])
async def test_two_leaders_at_once_still_enqueue_each_tick_once(url: str) -> None:
    """The lease aside, every tick is claimed with compare_and_swap before it is enqueued: two
    runners handling the same ticks at once (two app objects on one SQLite file) enqueue each once."""
    recorders = [Enqueued(count=1000), Enqueued(count=1000)]
    apps = [QueueTasks(name="twice", broker_url=url, plugins=[recorders[0]])]
    if url.startswith("sqlite"):
        apps.append(QueueTasks(name="twice", broker_url=url, plugins=[recorders[1]]))
    schedules = []
    for each in apps:
        each.task(name="job")(lambda: None)
        schedules.append(schedule(each, "job", trigger=every_second(), misfire="catch_up", name="catch-up"))
        await each.start()
    try:
        async with anyio.create_task_group() as group:
            for number in range(2):  # each leader first looked before T0: ticks T0 ... T0 + 30 s are due
                group.start_soon(fire_due, apps[number % len(apps)], [schedules[number % len(apps)]], at(30.5), {"catch-up": at(-1)})
    finally:
        for each in apps:
            await each.close()
    ticks = sorted(tick for recorder in recorders for _, tick, *_ in recorder.ticks)
    assert ticks == sorted({tick for tick in ticks}) and len(ticks) == 31  # T0 ... T0 + 30 s, once each
    assert tick_gaps(ticks) == [1.0] * 30


async def test_a_tick_whose_enqueue_fails_is_given_back_and_enqueued_next_time(app: QueueTasks) -> None:
    class BrokerAway:
        failures = 1

        @hookimpl
        def qtasks_task_enqueue(self, message: Any) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("broker away")

    recorder = Enqueued(count=1)
    app.add_plugin(BrokerAway())
    app.add_plugin(recorder)

    @app.task
    async def job(value: Any) -> None:
        pass

    ok = schedule(app, "job", trigger=every_second(), args=(1,), name="ok")
    bad = schedule(app, "job", trigger=every_second(), args=(object(),), name="bad")  # cannot be serialised
    seen = {"ok": at(-1), "bad": at(-1)}  # the leader first looked before T0: the first tick is T0
    await app.start()
    assert await fire_due(app, [ok], at(0.5), seen) == RENEW_EVERY  # failed: try again after a second
    assert await app.global_config.component.get_all(ticks_name(app)) == {}  # the claim was given back
    assert await fire_due(app, [ok], at(0.6), seen) == pytest.approx(0.4)
    assert [tick for _, tick, *_ in recorder.ticks] == [at(0).isoformat()]
    await fire_due(app, [bad], at(0.5), seen)
    assert await app.global_config.component.get(ticks_name(app), "bad") == at(0).isoformat()  # dropped, not retried
    assert len(recorder.ticks) == 1
    await app.close()


# -- schedules run by the worker ------------------------------------------------------------------


async def test_an_async_app_worker_enqueues_each_tick_of_async_sync_and_generator_tasks(app: QueueTasks) -> None:
    runs: dict[str, list[str]] = {"async": [], "sync": [], "generator": []}
    enough = anyio.Event()

    def ran(kind: str, tick: str) -> None:
        runs[kind].append(tick)
        if all(len(ticks) >= 3 for ticks in runs.values()):
            enough.set()

    @app.task(echo=True)
    async def async_job(self: Any, kind: str) -> None:
        ran(kind, (await self.ctx.get_metadata()).extra["timer"]["tick"])

    @app.task(echo=True)
    def sync_job(self: Any, kind: str) -> None:
        tick = self.ctx.get_metadata().extra["timer"]["tick"]
        anyio.from_thread.run_sync(ran, kind, tick)

    @app.task(echo=True)
    async def generator_job(self: Any, kind: str) -> Any:
        yield kind
        ran(kind, (await self.ctx.get_metadata()).extra["timer"]["tick"])

    for task_name, kind in (("async_job", "async"), ("sync_job", "sync"), ("generator_job", "generator")):
        schedule(app, task_name, trigger=IntervalTrigger(seconds=0.2), args=(kind,), misfire="catch_up")  # no tick left out
    async with running_worker(app, concurrency=4) as worker:
        with anyio.fail_after(WAIT):
            await enough.wait()
        lease = await app.global_config.component.get(leader_name(app), "leader")
    assert lease["owner"] == worker.worker_id
    for ticks in runs.values():
        assert len(set(ticks)) == len(ticks)  # no tick twice
        assert all(gap == pytest.approx(0.2, abs=1e-6) for gap in tick_gaps(sorted(ticks)[:3]))
    assert await app.global_config.component.get(leader_name(app), "leader") is None  # released on stop


def test_a_sync_app_worker_runs_its_schedules() -> None:
    app = SyncQueueTasks(name="timers-sync", broker_url="memory://")
    ticks: list[str] = []
    three = threading.Event()

    @app.task(echo=True)
    def beat(self: Any, label: str) -> str:
        ticks.append(self.ctx.get_metadata().extra["timer"]["tick"])
        if len(ticks) == 3:
            three.set()
        return label

    timer = SyncTimer(app)
    declared = timer.add_task("hello", task_name="beat", trigger=IntervalTrigger(seconds=0.2), misfire="catch_up")
    assert timer.tasks == {"beat": declared.trigger} and timer.schedules == (declared,)
    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    try:
        assert three.wait(WAIT)
    finally:
        app.stop()
        worker.join(WAIT)
        app.close()
    assert not worker.is_alive()
    assert tick_gaps(ticks[:3]) == [0.2, 0.2]


async def test_async_timer_serve_enqueues_without_a_worker_and_shares_the_lease_with_one(app: QueueTasks) -> None:
    """The original API: ``AsyncTimer(app).add_task(*args, task_name=, trigger=, priority=, **kwargs)``.
    The timer alone enqueues; then a timer and a worker in one process are two runners of one
    app, and the ticks go on from where the timer left them: one task per tick, none missed."""
    recorder = Enqueued(count=3)
    app.add_plugin(recorder)

    @app.task
    async def report(day: str, *, fmt: str) -> None:
        pass

    async def until_enqueued(count: int) -> None:
        recorder.count = count
        with anyio.fail_after(WAIT):
            while len(recorder.ticks) < count:
                await anyio.sleep(0.01)

    timer = AsyncTimer(app)
    timer.add_task("monday", task_name="report", trigger=IntervalTrigger(seconds=0.2), priority=7, timeout=5, misfire="catch_up", fmt="pdf")
    async with anyio.create_task_group() as group:
        group.start_soon(timer.serve)
        await until_enqueued(3)
        timer.stop()
    assert await app.global_config.component.get(leader_name(app), "leader") is None  # released on stop
    async with running_worker(app):
        async with anyio.create_task_group() as group:
            group.start_soon(timer.serve)
            await until_enqueued(6)
            timer.stop()
    assert all((args, kwargs, priority) == (("monday",), {"fmt": "pdf"}, 7) for _, _, args, kwargs, priority in recorder.ticks)
    ticks = [tick for _, tick, *_ in recorder.ticks]
    assert len(set(ticks)) == len(ticks) and set(tick_gaps(ticks)) == {0.2}  # none twice, none missed


def test_sync_timer_run_forever_blocks_until_stop() -> None:
    app = SyncQueueTasks(name="timers-standalone", broker_url="memory://")
    recorder = Enqueued(count=2)
    app.add_plugin(recorder)
    app.task(name="ping")(lambda: "pong")
    timer = SyncTimer(app)
    timer.schedule("ping", trigger=IntervalTrigger(seconds=0.2), misfire="catch_up", name="pinger")
    runner = threading.Thread(target=timer.run_forever)
    runner.start()
    try:
        assert recorder.reached.wait(WAIT)
    finally:
        timer.stop()
        runner.join(WAIT)
        app.close()
    assert not runner.is_alive()
    assert {name for name, *_ in recorder.ticks} == {"pinger"}


async def test_a_worker_runs_the_timer_service_only_for_an_app_with_timers(app: QueueTasks) -> None:
    async with running_worker(app) as worker:
        assert timers.qtasks_worker_services(worker) is None  # no timer, no schedule: no service, no lease
        AsyncTimer(app)
        assert timers.qtasks_worker_services(worker) is not None


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"trigger": 5}, TypeError, "trigger must be an APScheduler 3.x trigger, e.g. IntervalTrigger(seconds=10)"),
    ({"misfire": "later"}, ValueError, "misfire='later': use 'skip' (drop late ticks) or 'catch_up'"),
    ({"misfire_grace": -1}, ValueError, "misfire_grace=-1: use a number of seconds >= 0"),
    ({"priority": "high"}, TypeError, "priority must be an int (lower runs first) or None, got 'high'"),
    ({"args": "abc"}, TypeError, "args must be a tuple and kwargs a dict, got str"),
    ({"name": ""}, TypeError, "name must be a non-empty string"),
])
def test_a_wrong_schedule_is_refused_naming_the_fix(app: QueueTasks, options: dict[str, Any], error: type, message: str) -> None:
    app.task(name="job")(lambda: None)
    with pytest.raises(error) as raised:
        schedule(app, "job", **{"trigger": every_second(), **options})
    assert message in str(raised.value)
    assert schedule(app, "job", trigger=every_second()).name == "job@interval[0:00:01]"


def test_an_unknown_task_or_a_second_schedule_of_the_same_name_is_refused(app: QueueTasks) -> None:
    app.task(name="job")(lambda: None)
    with pytest.raises(ConfigurationError, match=r"has no task named 'jbo' \(registered: job\); define it with @app.task"):
        AsyncTimer(app).add_task(task_name="jbo", trigger=every_second())
    schedule(app, "job", trigger=every_second())
    with pytest.raises(ValueError, match=r"a schedule named 'job@interval\[0:00:01\]' exists already .*give each schedule its own name="):
        schedule(app, "job", trigger=every_second(), args=(2,))
    assert schedule(app, "job", trigger=every_second(), args=(2,), name="job-2").name == "job-2"


@pytest.mark.parametrize("sync", [False, True])
def test_a_blocked_timers_plugin_refuses_timers_naming_it(sync: bool) -> None:
    make = SyncQueueTasks if sync else QueueTasks
    app = make(name="no-timers", broker_url="memory://", disable_plugins=["timers"])
    app.task(name="job")(lambda: None)
    fix = "timers need the builtin 'timers' plugin, which is disabled: remove 'timers' from disable_plugins"
    with pytest.raises(ConfigurationError, match=fix):
        (SyncTimer if sync else AsyncTimer)(app)
    with pytest.raises(ConfigurationError, match=fix):
        schedule(app, "job", trigger=every_second())


def test_the_timers_example_prints_three_ticks_0_3_s_apart(tmp_path: Path) -> None:
    assert run_example("timers", tmp_path) == [
        "tick 1: heartbeat('billing') at +0.0s",
        "tick 2: heartbeat('billing') at +0.3s",
        "tick 3: heartbeat('billing') at +0.6s",
        "the leader is this worker: True",
    ]


# -- three worker processes, the leader killed ----------------------------------------------------

JOBS = '''
import os
import time

from apscheduler.triggers.interval import IntervalTrigger

from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.timers import schedule


class RecordTicks:
    """One line per task enqueued by a tick and per task finished, appended to the shared log."""

    @hookimpl
    def qtasks_task_enqueued(self, task):
        self.write("enqueued", task)

    @hookimpl
    def qtasks_task_finished(self, task):
        self.write(f"finished:{{task.status}}", task)

    def write(self, event, task):
        tick = task.extra.get("timer")
        if tick:
            with open({log!r}, "a") as out:
                out.write(f"{{event}} {{tick['schedule']}} {{tick['tick']}} {{task.uuid}} {{os.getpid()}} {{time.time()}}\\n")


app = QueueTasks(name={name!r}, broker_url={url!r}, plugins=[RecordTicks()])


@app.task
async def beat(policy):
    return policy


for policy in ("skip", "catch_up"):
    schedule(app, "beat", trigger=IntervalTrigger(seconds=0.5), args=(policy,), misfire=policy, name=policy)
'''


def _events(log: Path) -> list[list[str]]:
    """The complete lines of the shared log, split: event, schedule, tick, uuid, pid, time."""
    if not log.exists():
        return []
    return [line.split() for line in log.read_text().splitlines() if len(line.split()) == 6]


async def _until(log: Path, done: Any) -> list[list[str]]:
    with anyio.fail_after(30):
        while not done(events := _events(log)):
            await anyio.sleep(0.05)
    return events


def _enqueued_after(events: list[list[str]], since: float, schedule_name: str, not_pid: str = "") -> list[list[str]]:
    return [e for e in events if e[0] == "enqueued" and e[1] == schedule_name and float(e[5]) > since and e[4] != not_pid]


async def _cleanup_redis(url: str, name: str) -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"qtasks:{{{name}}}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_three_workers_one_killed_every_tick_is_enqueued_once(tmp_path: Path, backend: str) -> None:
    """Three ``qtasks run`` processes serve one app with two 0.5 s schedules (skip, catch_up).
    The leader (the lease's owner) is killed with SIGKILL; a standby takes over within the lease
    plus one renewal; no tick is ever enqueued twice, and catch_up leaves no tick out."""
    name = f"timers-{uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path}/timers.sqlite3" if backend == "sqlite" else "redis://127.0.0.1:6379/15"
    log = tmp_path / "ticks.log"
    source = JOBS.format(name=name, url=url, log=str(log))
    observer = QueueTasks(name=name, broker_url=url)
    try:
        await observer.start()
        with ExitStack() as stack:
            processes = {}
            for number in range(3):
                (tmp_path / f"worker{number}").mkdir()
                process = stack.enter_context(worker_process(tmp_path / f"worker{number}", source, concurrency=2))
                processes[str(process.pid)] = process
            await _until(log, lambda events: len(_enqueued_after(events, 0, "catch_up")) >= 3)
            lease = await observer.global_config.component.get(leader_name(observer), "leader")
            leader = lease["owner"].rsplit(":", 2)[1]
            assert leader in processes
            os.kill(int(leader), signal.SIGKILL)
            processes[leader].wait()
            killed_at = time.time()
            events = await _until(log, lambda events: all(len(_enqueued_after(events, killed_at, policy, not_pid=leader)) >= 3
                                                          for policy in ("skip", "catch_up")))
            successor = (await observer.global_config.component.get(leader_name(observer), "leader"))["owner"].rsplit(":", 2)[1]
    finally:
        await observer.close()
        if backend == "redis":
            await _cleanup_redis(url, name)
    enqueued = [e for e in events if e[0] == "enqueued"]
    assert {e[4] for e in enqueued if float(e[5]) > killed_at} == {successor} and successor != leader
    for policy in ("skip", "catch_up"):
        ticks = [e[2] for e in enqueued if e[1] == policy]
        assert len(ticks) == len(set(ticks)), f"{policy}: a tick was enqueued twice"
        gaps = tick_gaps(sorted(ticks))
        if policy == "catch_up":
            assert gaps == [0.5] * len(gaps)  # every tick, once, across the failover
        else:
            assert max(gaps) <= LEASE_SECONDS + RENEW_EVERY + 2 * 0.5 + 1.0  # the ticks skipped during the failover
        first_after = min(float(e[5]) for e in _enqueued_after(events, killed_at, policy))
        assert first_after - killed_at <= LEASE_SECONDS + RENEW_EVERY + 1.5
    finished = [e for e in events if e[0].startswith("finished")]
    assert {e[0] for e in finished} == {"finished:success"} and len(finished) >= 6
    assert {e[3] for e in finished} <= {e[3] for e in enqueued}
