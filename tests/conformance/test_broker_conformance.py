"""Broker conformance: the behaviour every broker (with its storage) must show through the kernel.

Each test runs once per broker URL of ``conftest.BROKER_CASES`` on a fresh app with a unique
name. Tests that need a queue shared between processes ask for the ``cross_process`` fixture,
which skips them on brokers that live in one process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest

from qtasks.asyncio import QueueTasks
from qtasks.kernel.model import Call, Envelope

from .helpers import BrokerCase, eventually, serving

pytestmark = pytest.mark.anyio

MakeApp = Callable[..., QueueTasks]
CRASH_WORKER = Path(__file__).with_name("crash_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


async def _nothing_claimable(app: QueueTasks) -> bool:
    """True when the broker has no envelope left to lease (probes with a short claim)."""
    return await app.broker.claim("conformance-probe", 10, 0.1) == []


# -- ordering ------------------------------------------------------------------------------------


async def test_fifo_within_one_priority(make_app: MakeApp) -> None:
    """Tasks of one priority run in enqueue order, across separate ``add_task`` calls and within
    one ``add_tasks`` batch, when a single consumer drains a queue filled before it started."""
    app = make_app()
    order: list[int] = []

    @app.task
    async def record(index: int) -> None:
        order.append(index)

    tasks = [await record.add_task(index, priority=3) for index in range(10)]
    tasks += await record.add_tasks([(index,) for index in range(10, 20)], priority=3)
    async with serving(app, concurrency=1):
        for task in tasks:
            assert (await app.wait_result(task.uuid, 5)).status == "success"
    assert order == list(range(20))


async def test_lower_priority_number_runs_first_then_fifo(make_app: MakeApp) -> None:
    """A queue filled before the worker starts is drained lowest priority number first, and
    tasks of equal priority keep their enqueue order."""
    app = make_app()
    order: list[str] = []

    @app.task
    async def record(label: str) -> None:
        order.append(label)

    enqueued = [("p5-a", 5), ("p1-a", 1), ("p3", 3), ("p0-a", 0), ("p2", 2), ("p1-b", 1), ("p5-b", 5), ("p0-b", 0)]
    tasks = [await record.add_task(label, priority=priority) for label, priority in enqueued]
    async with serving(app, concurrency=1):
        for task in tasks:
            assert (await app.wait_result(task.uuid, 5)).status == "success"
    assert order == ["p0-a", "p0-b", "p1-a", "p1-b", "p2", "p3", "p5-a", "p5-b"]


# -- delays --------------------------------------------------------------------------------------


async def test_countdown_and_eta_delay_a_task_without_blocking_others(make_app: MakeApp) -> None:
    """``countdown`` and an aware ``eta`` keep a task from running before its time; a task that
    is not due yet blocks neither an immediate task queued before it nor one queued after it
    with a worse priority; a naive ``eta`` or ``countdown`` with ``eta`` is refused."""
    app = make_app()
    ran: dict[str, float] = {}

    @app.task
    async def stamp(label: str) -> None:
        ran[label] = time.time()

    with pytest.raises(ValueError, match="no time zone"):
        await app.add_task("stamp", "naive", eta=datetime.now() + timedelta(seconds=1))
    with pytest.raises(ValueError, match="countdown or eta, not both"):
        await app.add_task("stamp", "both", countdown=1, eta=datetime.now(timezone.utc) + timedelta(seconds=1))

    first = await stamp.add_task("immediate-first", priority=5)
    before_countdown = time.time()
    by_countdown = await app.add_task("stamp", "countdown", priority=0, countdown=0.5)
    eta = datetime.now(timezone.utc) + timedelta(seconds=0.5)
    by_eta = await app.add_task("stamp", "eta", priority=0, eta=eta)
    after = await stamp.add_task("immediate-after", priority=9)
    async with serving(app, concurrency=1):
        for task in (first, by_countdown, by_eta, after):
            assert (await app.wait_result(task.uuid, 5)).status == "success"
    # a broker may keep due times in milliseconds: allow 10 ms of rounding, no more
    assert ran["countdown"] >= before_countdown + 0.5 - 0.01
    assert ran["eta"] >= eta.timestamp() - 0.01
    assert sorted(ran, key=ran.__getitem__)[:2] == ["immediate-first", "immediate-after"]


# -- leases and redelivery -----------------------------------------------------------------------


async def test_a_renewed_lease_is_never_redelivered(make_app: MakeApp, broker_case: BrokerCase) -> None:
    """A task running for about three leases keeps its lease through the worker's heartbeat: idle
    consumers (and, on a shared broker, a second worker process's app) never get it again, so
    it runs exactly once and its record shows a single delivery."""
    app = make_app(task_lease=0.3)
    apps = [app, make_app(name=app.name, task_lease=0.3)] if broker_case.cross_process else [app]
    runs: list[str] = []

    for each in apps:
        @each.task(name="long")
        async def long() -> str:
            runs.append("run")
            await anyio.sleep(1.0)  # elapsed time is the behaviour: three leases and more
            return "done"

    async with AsyncExitStack() as stack:
        for each in apps:
            await stack.enter_async_context(serving(each, concurrency=2))
        record = await app.add_task("long", timeout=10)
    assert record is not None and record.status == "success" and record.returning == "done"
    assert runs == ["run"]
    assert record.attempts == 1


@pytest.mark.slow
async def test_a_killed_workers_task_runs_again_elsewhere(make_app: MakeApp, cross_process: BrokerCase, tmp_path: Path) -> None:
    """When the process running a task is SIGKILLed, its lease runs out and another worker runs
    the task: it ends ``success`` there on the second delivery, with one final record and no
    envelope left behind."""
    lease = 0.5
    app = make_app(task_lease=lease)
    here: list[str] = []

    @app.task(name="crashy")
    async def crashy(marker: str) -> str:
        here.append(marker)
        return "in-process"

    marker = tmp_path / "crashy.started"
    log_path = tmp_path / "crash_worker.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(CRASH_WORKER), cross_process.url, app.name, str(lease)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        task = await app.add_task("crashy", str(marker))
        with anyio.fail_after(20):
            while not marker.exists():  # polls another process: nothing to wait on here
                if process.poll() is not None:
                    pytest.fail(f"the worker process exited ({process.returncode}) before running the task:\n{log_path.read_text()}")
                await anyio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    async with serving(app, concurrency=2):
        record = await app.wait_result(task.uuid, 10)
    assert record is not None and record.status == "success" and record.returning == "in-process"
    assert record.attempts == 2
    assert here == [str(marker)]
    assert (await app.get(task.uuid)).status == "success"
    assert await _nothing_claimable(app)
    assert await app.broker.dead_letters() == []


async def test_poison_message_goes_to_the_dead_letter_queue(make_app: MakeApp) -> None:
    """An envelope whose leases keep running out comes back with ``lost`` and ``delivery_count``
    raised each time; once ``lost`` reaches ``max_deliveries`` the worker dead-letters it without
    running the task and records ``error``. ``requeue_dead`` queues it again with fresh counts,
    and ``purge_dead`` drops dead letters and counts them."""
    app = make_app(task_lease=0.2, max_deliveries=3)
    runs: list[str] = []
    ran = anyio.Event()

    @app.task
    async def poison() -> str:
        runs.append("run")
        ran.set()
        return "survived"

    task = await poison.add_task()
    uuid = str(task.uuid)
    broker = app.broker
    for attempt in range(3):
        deliveries = await broker.claim("w", 1, 2.0)  # waits for the previous lease to run out
        assert [(d.envelope.uuid, d.delivery_count, d.lost) for d in deliveries] == [(uuid, attempt + 1, attempt)]
        if attempt == 0:
            assert await broker.claim("w", 1, 0.05) == [], "a leased envelope was handed out again before its lease ran out"
        # never acked: the lease runs out

    async with serving(app, concurrency=1):
        record = await app.wait_result(task.uuid, 5)
        assert record is not None and record.status == "error"
        assert "max_deliveries" in record.traceback
        assert record.attempts == 4
        assert runs == []
        dead = [letter for letter in await broker.dead_letters() if letter.uuid == uuid]
        assert len(dead) == 1 and "max_deliveries" in dead[0].reason
        assert dead[0].delivery_count == 4

        assert await broker.requeue_dead([uuid]) == [uuid]
        assert [letter.uuid for letter in await broker.dead_letters()] == []
        with anyio.fail_after(5):
            await ran.wait()

        async def succeeded() -> Any:
            current = await app.get(task.uuid)
            return current if current.status == "success" else None

        final = await eventually(succeeded)
    assert runs == ["run"] and final.returning == "survived" and final.attempts == 1

    doomed = await poison.add_task()
    [delivery] = await broker.claim("w", 1, 2.0)
    assert delivery.envelope.uuid == str(doomed.uuid)
    await broker.dead_letter(delivery, "conformance: purge me")
    assert [(d.uuid, d.reason) for d in await broker.dead_letters()] == [(str(doomed.uuid), "conformance: purge me")]
    assert await broker.purge_dead() == 1
    assert await broker.dead_letters() == []
    assert await broker.purge_dead() == 0
    assert await _nothing_claimable(app)


# -- retries -------------------------------------------------------------------------------------


async def test_a_retry_waits_its_delay_in_the_broker_then_runs_once_more(make_app: MakeApp) -> None:
    """A task that fails twice with ``retry=2`` is stored ``retry`` between attempts and given
    back to the broker with its backoff delay: nothing is claimable before half the delay (equal
    jitter), and the next attempt runs after it. It ends ``success`` with three attempts and both
    errors, and the caller's single wait covers all of it."""
    app = make_app()
    starts: list[float] = []
    first_failed = anyio.Event()
    release = anyio.Event()

    @app.task(retry=2, retry_delay=0.4, retry_backoff=1.0)
    async def flaky() -> int:
        starts.append(time.monotonic())
        if len(starts) == 1:
            first_failed.set()
            await release.wait()
        if len(starts) < 3:
            raise ValueError(f"attempt {len(starts)}")
        return len(starts)

    task = await flaky.add_task()
    async with serving(app, concurrency=1):
        with anyio.fail_after(5):
            await first_failed.wait()
        release.set()

        async def retrying() -> bool:
            return (await app.get(task.uuid)).status == "retry"

        await eventually(retrying)
        assert await app.broker.claim("conformance-probe", 1, 0.1) == [], "a retry was claimable before its delay"
        record = await app.wait_result(task.uuid, 10)
    assert record is not None and (record.status, record.returning, record.attempts) == ("success", 3, 3)
    assert [e.strip().splitlines()[-1] for e in record.errors] == ["ValueError: attempt 1", "ValueError: attempt 2"]
    assert starts[1] - starts[0] >= 0.2 and starts[2] - starts[1] >= 0.2


# -- records -------------------------------------------------------------------------------------


async def test_a_final_record_expires_after_result_ttl(make_app: MakeApp) -> None:
    """A finished task's record is readable at once and gone (``app.get`` returns None) once
    ``result_ttl`` has passed since it was stored, not before."""
    app = make_app(result_ttl=0.5)

    @app.task
    async def quick() -> str:
        return "ok"

    async with serving(app, concurrency=1):
        record = await quick.add_task(timeout=5)
    assert record is not None and record.status == "success"
    stored = await app.get(record.uuid)
    assert stored is not None and stored.returning == "ok"

    async def gone() -> bool:
        return await app.get(record.uuid) is None

    await eventually(gone, timeout=5)
    assert time.time() - record.updated_at.timestamp() >= 0.5 - 0.01


# -- failures the worker survives ----------------------------------------------------------------


async def test_an_unknown_task_fails_and_the_worker_goes_on(make_app: MakeApp) -> None:
    """A task name no worker knows ends ``error`` with a traceback naming it and the registered
    tasks; the worker then runs the next task as usual."""
    app = make_app()

    @app.task
    async def echo(value: int) -> int:
        return value

    async with serving(app, concurrency=1):
        unknown = await app.add_task("no_such_task", 1, timeout=5)
        valid = await echo.add_task(7, timeout=5)
    assert unknown is not None and unknown.status == "error"
    assert "'no_such_task'" in unknown.traceback and "echo" in unknown.traceback
    assert valid is not None and (valid.status, valid.returning) == ("success", 7)


async def test_an_undecodable_payload_is_dead_lettered_and_the_worker_goes_on(make_app: MakeApp) -> None:
    """A payload the serializer cannot read is dead-lettered (its bytes kept, the reason saying
    "undecodable") and recorded ``error``; the worker then runs the next task to success."""
    app = make_app()

    @app.task
    async def echo(value: int) -> int:
        return value

    await app.start()
    garbage = Envelope(uuid=str(uuid4()), priority=0, payload=b"\xff not json")
    await app.broker.enqueue([garbage])
    async with serving(app, concurrency=1):
        valid = await echo.add_task(3, timeout=5)
        assert valid is not None and (valid.status, valid.returning) == ("success", 3)

        async def dead_garbage() -> list[Any]:
            return [letter for letter in await app.broker.dead_letters() if letter.uuid == garbage.uuid]

        [letter] = await eventually(dead_garbage)
    assert "undecodable" in letter.reason
    assert letter.payload == garbage.payload
    record = await app.get(garbage.uuid)
    assert record is not None and record.status == "error" and "undecodable" in record.traceback


# -- producer API --------------------------------------------------------------------------------


async def test_add_tasks_enqueues_a_batch(make_app: MakeApp) -> None:
    """``add_tasks`` accepts tuples, dicts and ``Call`` items, returns one ``new`` record per item
    in order, and the worker runs each with its own arguments; the task handle's ``add_tasks``
    does the same, an empty batch returns [], and a bad item raises TypeError naming the accepted
    forms without queuing any item of its batch."""
    app = make_app()

    @app.task
    async def collect(a: Any = None, x: Any = None) -> dict[str, Any]:
        return {"a": a, "x": x}

    records = await app.add_tasks("collect", [(1,), (2,), {"x": 3}, Call(4, x=5)])
    assert [r.status for r in records] == ["new"] * 4
    assert [(tuple(r.args), dict(r.kwargs)) for r in records] == [((1,), {}), ((2,), {}), ((), {"x": 3}), ((4,), {"x": 5})]
    assert len({r.uuid for r in records}) == 4
    more = await collect.add_tasks([(6,), Call(x=7)])
    assert [r.task_name for r in more] == ["collect", "collect"]
    assert await app.add_tasks("collect", []) == []
    with pytest.raises(TypeError, match=r"tuple of arguments, a dict of keyword arguments or qtasks\.Call"):
        await app.add_tasks("collect", [(8,), 42])

    async with serving(app, concurrency=2):
        results = [await app.wait_result(r.uuid, 5) for r in records + more]
    assert [(r.status, r.returning) for r in results] == [
        ("success", {"a": 1, "x": None}),
        ("success", {"a": 2, "x": None}),
        ("success", {"a": None, "x": 3}),
        ("success", {"a": 4, "x": 5}),
        ("success", {"a": 6, "x": None}),
        ("success", {"a": None, "x": 7}),
    ]
    assert await _nothing_claimable(app), "an item of the refused batch was queued"


async def test_cancel_drops_a_queued_task_and_stops_a_running_one(make_app: MakeApp) -> None:
    """A queued task cancelled with a reason never runs and its record is ``cancel`` with that
    reason; a running task is cancelled and ends ``cancel``; a finished one cannot be cancelled."""
    app = make_app()
    ran: list[str] = []
    started = anyio.Event()
    stopped: list[str] = []

    @app.task
    async def job(label: str) -> str:
        ran.append(label)
        if label == "blocking":
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                stopped.append(label)
        return label

    victim = await job.add_task("victim")
    assert await app.cancel(victim.uuid, "why") is True
    cancelled = await app.get(victim.uuid)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancel", "why")
    after = await job.add_task("after")
    async with serving(app, concurrency=1):
        done = await app.wait_result(after.uuid, 5)
        assert done is not None and done.status == "success"
        blocking = await job.add_task("blocking")
        with anyio.fail_after(5):
            await started.wait()
        assert await app.cancel(blocking.uuid, "while running") is True
        final = await app.wait_result(blocking.uuid, 5)
        assert (final.status, final.cancel_reason) == ("cancel", "while running")
    assert ran == ["after", "blocking"] and stopped == ["blocking"]
    assert await app.cancel(after.uuid, "finished") is False
    assert await app.cancel(victim.uuid, "again") is False
    cancelled = await app.get(victim.uuid)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancel", "why")


# -- broker level --------------------------------------------------------------------------------


async def test_enqueuing_a_known_uuid_changes_nothing(make_app: MakeApp) -> None:
    """An envelope queued twice (in two calls, or twice in one batch) is claimed once, and
    queuing it again while it is claimed does not queue a second copy."""
    app = make_app()
    await app.start()
    broker = app.broker
    envelope = Envelope(uuid=str(uuid4()), priority=0, payload=b"first")
    await broker.enqueue([envelope])
    await broker.enqueue([envelope])
    twice = Envelope(uuid=str(uuid4()), priority=1, payload=b"second")
    await broker.enqueue([twice, twice])
    deliveries = await broker.claim("w", 10, 1.0)
    assert [d.envelope.uuid for d in deliveries] == [envelope.uuid, twice.uuid]
    assert [d.envelope.payload for d in deliveries] == [b"first", b"second"]
    await broker.enqueue([envelope])  # still claimed
    assert await broker.claim("w", 10, 0.1) == []
    for delivery in deliveries:
        await broker.ack(delivery)
    assert await broker.claim("w", 10, 0.1) == []


async def test_a_stale_ack_changes_nothing(make_app: MakeApp) -> None:
    """A worker whose lease ran out and was reclaimed by another claim cannot ack the task away:
    the task stays with its new holder, who can still give it back."""
    app = make_app(task_lease=0.2)
    await app.start()
    broker = app.broker
    await broker.enqueue([Envelope(uuid=str(uuid4()), priority=0, payload=b"p")])
    [first] = await broker.claim("a", 1, 1.0)
    [second] = await eventually(lambda: broker.claim("b", 1, 0.5))  # after the first lease runs out
    assert (second.delivery_count, second.lost) == (2, 1)
    await broker.ack(first)  # stale
    await broker.requeue(second)
    [third] = await broker.claim("c", 1, 1.0)
    assert third.envelope.uuid == first.envelope.uuid and third.delivery_count == 3


async def test_a_cancelled_uuid_queued_again_is_delivered_once(make_app: MakeApp) -> None:
    """Cancelling a queued envelope and queuing the same uuid again yields one delivery."""
    app = make_app()
    await app.start()
    broker = app.broker
    envelope = Envelope(uuid=str(uuid4()), priority=0, payload=b"again")
    await broker.enqueue([envelope])
    assert await broker.cancel(envelope.uuid) is True
    assert await broker.cancel(envelope.uuid) is False
    await broker.enqueue([envelope])
    deliveries = await broker.claim("w", 10, 1.0)
    assert [d.envelope.uuid for d in deliveries] == [envelope.uuid]
    await broker.ack(deliveries[0])
    assert await broker.claim("w", 10, 0.1) == []


async def test_the_worker_registry_lists_a_running_worker(make_app: MakeApp) -> None:
    """While a worker runs a task, ``broker.workers()`` lists it with its id, app, process,
    concurrency and the running task's uuid; once it stops it is no longer listed."""
    app = make_app(task_lease=0.3)
    started = anyio.Event()
    release = anyio.Event()

    @app.task
    async def block() -> None:
        started.set()
        await release.wait()

    async with serving(app, concurrency=2) as worker:
        task = await block.add_task()
        with anyio.fail_after(5):
            await started.wait()

        async def listed() -> list[Any]:
            return [w for w in await app.broker.workers() if w.worker_id == worker.worker_id and str(task.uuid) in w.running]

        [info] = await eventually(listed)
        assert (info.app, info.pid, info.concurrency) == (app.name, os.getpid(), 2)
        release.set()
        assert (await app.wait_result(task.uuid, 5)).status == "success"
    assert worker.worker_id not in [w.worker_id for w in await app.broker.workers()]
