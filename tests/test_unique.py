"""unique_key: one live task per key while queued or running, freed when it ends; stale holders; the example."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins import unique
from qtasks.errors import UnknownOptionError
from qtasks.kernel.model import Task
from qtasks.testing import running_worker
from subprocesses import run_example

pytestmark = pytest.mark.anyio


async def test_one_task_per_key_while_queued_and_running_then_a_new_one(app: QueueTasks) -> None:
    started, release = anyio.Event(), anyio.Event()
    runs: list[str] = []

    @app.task
    async def report(label: str) -> str:
        runs.append(label)
        started.set()
        with anyio.fail_after(10):
            await release.wait()
        return label

    first = await report.add_task("first", unique_key="daily")
    queued = await report.add_task("queued", unique_key="daily")
    other = await report.add_task("other", unique_key="weekly")
    assert queued.uuid == first.uuid and queued.status == "new" and queued.app is app
    assert other.uuid != first.uuid
    async with running_worker(app, concurrency=2):
        with anyio.fail_after(10):
            await started.wait()
        running = await report.add_task("running", unique_key="daily")
        assert running.uuid == first.uuid
        release.set()
        done = await app.wait_result(first.uuid, 10)
        again = await report.add_task("again", unique_key="daily", timeout=10)
    assert done.status == "success" and done.returning == "first"
    assert again.uuid != first.uuid and again.returning == "again"
    assert sorted(runs) == ["again", "first", "other"]
    assert await app.global_config.get_all(unique.keys_name(app)) == {}  # every key freed


async def test_a_generator_task_holds_its_key_until_it_ends(app: QueueTasks) -> None:
    @app.task
    def pages(n: int) -> Any:
        for page in range(n):
            yield page

    first = await pages.add_task(3, unique_key="pages")
    assert (await pages.add_task(5, unique_key="pages")).uuid == first.uuid
    async with running_worker(app):
        assert (await app.wait_result(first.uuid, 10)).returning == [0, 1, 2]
        assert (await pages.add_task(2, unique_key="pages", timeout=10)).returning == [0, 1]


def test_a_sync_app_with_a_sync_task() -> None:
    app = SyncQueueTasks(name="sync-unique", broker_url="memory://")
    started, release = threading.Event(), threading.Event()

    @app.task
    def export(n: int) -> int:
        started.set()
        release.wait(10)
        return n

    first = export.add_task(1, unique_key="export")
    assert export.add_task(2, unique_key="export").uuid == first.uuid
    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    try:
        assert started.wait(10)
        assert app.add_task("export", 3, unique_key="export").uuid == first.uuid
        release.set()
        assert app.wait_result(first.uuid, 10).returning == 1
        again = export.add_task(4, unique_key="export", timeout=10)
    finally:
        release.set()
        app.stop()
        worker.join(10)
    app.close()
    assert again.uuid != first.uuid and again.returning == 4


async def test_a_cancelled_or_failed_holder_is_stale(app: QueueTasks) -> None:
    """A task cancelled before it ran never frees its key itself: its final record makes the
    entry stale, so the next add_task takes the key over. The same for a task that failed."""

    @app.task
    async def job() -> None:
        raise RuntimeError("broken")

    cancelled = await job.add_task(unique_key="k")
    assert await app.cancel(cancelled.uuid)
    fresh = await job.add_task(unique_key="k")
    assert fresh.uuid != cancelled.uuid
    async with running_worker(app):
        assert (await app.wait_result(fresh.uuid, 10)).status == "error"
    assert (await job.add_task(unique_key="k")).uuid not in (cancelled.uuid, fresh.uuid)


async def test_a_holder_without_a_record_is_waited_for_briefly_then_replaced(app: QueueTasks, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry whose task has no record yet: its producer may be about to store it, so add_task
    looks again until the record appears (and returns it); with no record after the grace period,
    the entry is replaced."""

    @app.task
    async def job() -> None: ...

    await app.start()
    config = app.global_config.component
    storage = app.storage
    pending = Task(status="new", uuid=uuid4(), priority=0, task_name="job", app=app)
    looked = anyio.Event()
    real_get = storage.get

    async def get(uuid: Any) -> Task | None:
        found = await real_get(uuid)
        looked.set()
        return found

    monkeypatch.setattr(storage, "get", get)
    await config.set(unique.keys_name(app), "k", {"uuid": str(pending.uuid), "at": time.time()})
    answers: list[Task] = []

    async def add() -> None:
        answers.append(await job.add_task(unique_key="k"))

    async with anyio.create_task_group() as group:
        group.start_soon(add)
        with anyio.fail_after(5):
            await looked.wait()  # the first look found nothing
        await storage.save(pending)
    assert answers[0].uuid == pending.uuid

    monkeypatch.setattr(unique, "CLAIM_GRACE", 0.2)
    ghost = str(uuid4())
    await config.set(unique.keys_name(app), "g", {"uuid": ghost, "at": time.time()})
    took_over = await job.add_task(unique_key="g")
    assert str(took_over.uuid) != ghost
    assert (await config.get(unique.keys_name(app), "g"))["uuid"] == str(took_over.uuid)
    await config.set(unique.keys_name(app), "junk", "not an entry")
    assert (await job.add_task(unique_key="junk")).status == "new"


@pytest.mark.parametrize("sync", [False, True])
def test_a_blocked_unique_plugin_makes_add_task_refuse_unique_key(sync: bool) -> None:
    app = (SyncQueueTasks if sync else QueueTasks)(name="no-unique", broker_url="memory://", disable_plugins=["unique"])
    app.task(name="job")(lambda: None)
    message = r"add_task\('job'\): unique_key needs a plugin that implements qtasks_task_unique \(the builtin 'unique' plugin is disabled"
    with pytest.raises(UnknownOptionError, match=message):
        if sync:
            app.add_task("job", unique_key="k")
        else:
            anyio.run(partial(app.add_task, "job", unique_key="k"))
    if sync:
        app.close()


def test_the_unique_example_queues_one_task_per_key(tmp_path: Path) -> None:
    assert run_example("unique", tmp_path) == [
        "same key, same task: True",
        "another key, another task: True",
        "while it runs, same task: True",
        "docs rebuilt",
        "after it ended, a new task: True | docs rebuilt",
    ]
