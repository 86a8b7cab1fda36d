"""Routers: bare and called ``@router.task``, include_router, several apps, enqueue-only processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from qtasks import AsyncRouter, QueueConfig, SyncRouter
from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.errors import ConfigurationError, UnknownOptionError
from qtasks.kernel.handles import AsyncTask, SyncTask
from qtasks.testing import running_worker
from subprocesses import ROOT, child_env, worker_process

pytestmark = pytest.mark.anyio


@contextmanager
def sync_worker(app: SyncQueueTasks) -> Iterator[None]:
    """Serve a sync app in a thread (its loop thread runs the worker); stop it on exit."""
    thread = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    thread.start()
    try:
        yield
    finally:
        app.stop()
        thread.join(10)


def make_router(kind: type[AsyncRouter] | type[SyncRouter]) -> Any:
    """A router with an async, a sync and a generator task, bare and called."""
    router = kind(name="maths")

    @router.task
    async def add(x: int, y: int) -> int:
        return x + y

    @router.task(name="times", priority=2)
    def multiply(x: int, y: int) -> int:
        return x * y

    @router.task()
    def count(n: int) -> Iterator[int]:
        yield from range(n)

    return router, add, multiply, count


async def test_bare_and_called_tasks_run_in_an_async_app_and_take_its_default_priority() -> None:
    router, add, multiply, count = make_router(AsyncRouter)
    assert sorted(router.tasks) == ["add", "count", "times"]  # the bare form registers too
    assert all(isinstance(handle, AsyncTask) for handle in (add, multiply, count))
    app = QueueTasks(name="routed", broker_url="memory://", config=QueueConfig(task_default_priority=7))
    app.include_router(router)
    assert {name: d.priority for name, d in app.tasks.items()} == {"add": 7, "times": 2, "count": 7}
    assert router.apps == [app] and app.routers == [router]
    async with running_worker(app):
        added = await add.add_task(2, 3, timeout=10)
        multiplied = await multiply(4, 5).add_task()
        counted = await count.add_task(3, timeout=10)
        [batch] = await add.add_tasks([(1, 1)])
        batched = await app.wait_result(batch.uuid, timeout=10)
    assert (added.status, added.returning, added.priority) == ("success", 5, 7)
    assert multiplied.priority == 2 and (await app.wait_result(multiplied.uuid, 10)).returning == 20
    assert (counted.status, counted.returning) == ("success", [0, 1, 2])
    assert batched.returning == 2 and batch.priority == 7


def test_bare_and_called_tasks_run_in_a_sync_app() -> None:
    router, add, multiply, count = make_router(SyncRouter)
    assert all(isinstance(handle, SyncTask) for handle in (add, multiply, count))
    app = SyncQueueTasks(name="routed-sync", broker_url="memory://")
    app.include_router(router)
    with sync_worker(app):
        added = add.add_task(2, 3, timeout=10)
        multiplied = multiply.add_task(4, 5, timeout=10)
        counted = count(3).add_task()
        done = app.wait_result(counted.uuid, 10)
    assert (added.status, added.returning, added.priority) == ("success", 5, 0)
    assert (multiplied.returning, multiplied.priority) == (20, 2)
    assert done.returning == [0, 1, 2]


async def test_an_async_router_in_a_sync_app_is_awaited_from_another_event_loop() -> None:
    """The handle reaches the sync app's own loop thread, where its components live."""
    router, add, _, count = make_router(AsyncRouter)
    app = SyncQueueTasks(name="bridged", broker_url="memory://")
    app.include_router(router)
    with sync_worker(app):
        added = await add.add_task(20, 22, timeout=10)
        counted = await count.add_task(2, timeout=10)
    assert (added.status, added.returning, counted.returning) == ("success", 42, [0, 1])


async def test_a_sync_router_in_an_async_app_blocks_from_a_worker_thread(app: QueueTasks) -> None:
    router, add, _, _ = make_router(SyncRouter)
    app.include_router(router)
    async with running_worker(app):
        record = await anyio.to_thread.run_sync(lambda: add.add_task(1, 2, timeout=10))
    assert (record.status, record.returning) == ("success", 3)


async def test_a_handle_before_its_router_is_included_says_how_to_fix_it() -> None:
    router, add, multiply, _ = make_router(AsyncRouter)
    with pytest.raises(ConfigurationError, match=r"task 'add' \(.*add\) is in no app yet: include the router: app\.include_router\(router\)"):
        await add.add_task(1, 2)
    with pytest.raises(ConfigurationError, match="include the router"):
        await add.add_tasks([(1, 2)])
    sync_router, sync_add, _, _ = make_router(SyncRouter)
    with pytest.raises(ConfigurationError, match="include the router"):
        sync_add.add_task(1, 2)
    assert (add.task_name, add.priority, multiply.priority) == ("add", None, 2)  # what was declared
    with pytest.raises(RuntimeError, match="not bound to an app"):
        add.ctx.app


async def test_an_unknown_option_is_refused_when_included_and_the_app_is_left_as_it_was() -> None:
    router = AsyncRouter(name="typos")

    @router.task
    async def fine() -> None: ...

    @router.task(retyr=3)
    async def typo() -> None: ...

    app = QueueTasks(name="strict", broker_url="memory://")
    with pytest.raises(UnknownOptionError, match=r"task 'typo': unknown option 'retyr' \(did you mean 'retry'"):
        app.include_router(router)
    assert app.tasks == {} and app.routers == [] and router.apps == []
    with pytest.raises(ConfigurationError, match="include the router"):
        await fine.add_task()


@pytest.mark.parametrize("app_class", [QueueTasks, SyncQueueTasks])
def test_an_option_of_a_blocked_plugin_names_the_plugin(app_class: Any) -> None:
    router = SyncRouter()

    @router.task(retry=2)
    def flaky() -> None: ...

    app = app_class(name="blocked", broker_url="memory://", disable_plugins=["retries"])
    with pytest.raises(UnknownOptionError, match=r"option 'retry' belongs to plugin 'retries', which is disabled; remove 'retries'"):
        app.include_router(router)
    assert "flaky" not in app.tasks


async def test_one_router_in_two_apps_gives_each_its_own_definitions_and_the_last_include_wins() -> None:
    router = AsyncRouter()
    ran_in: list[str] = []

    @router.task(echo=True)
    async def where(self: Any) -> str:
        ran_in.append(self.ctx.app.name)
        return self.ctx.app.name

    first = QueueTasks(name="first", broker_url="memory://", config=QueueConfig(task_default_priority=1))
    second = QueueTasks(name="second", broker_url="memory://", config=QueueConfig(task_default_priority=2))
    first.include_router(router)
    second.include_router(router)
    assert first.tasks["where"] is not second.tasks["where"]
    assert (first.tasks["where"].priority, second.tasks["where"].priority) == (1, 2)
    async with running_worker(first), running_worker(second):
        latest = await where.add_task(timeout=10)
        chosen = await where.for_app(first).add_task(timeout=10)
        first.include_router(router)  # including again makes it the default target
        again = await where.add_task(timeout=10)
    assert (latest.returning, latest.priority) == ("second", 2)
    assert (chosen.returning, chosen.priority) == ("first", 1)
    assert again.returning == "first" and sorted(ran_in) == ["first", "first", "second"]
    with pytest.raises(ConfigurationError, match="is not registered in app 'third'"):
        where.for_app(QueueTasks(name="third", broker_url="memory://"))


def test_two_routers_with_one_task_name_clash_naming_both() -> None:
    shop, billing = AsyncRouter(name="shop"), AsyncRouter(name="billing")

    @shop.task
    async def notify() -> None: ...

    @billing.task(name="notify")
    async def notify_billing() -> None: ...

    app = QueueTasks(name="clash", broker_url="memory://")
    app.include_routers(AsyncRouter(name="empty"), shop)
    with pytest.raises(ConfigurationError) as caught:
        app.include_router(billing)
    message = str(caught.value)
    assert "<AsyncRouter 'billing'>" in message and "<AsyncRouter 'shop'>" in message
    assert "notify_billing" in message and "rename one: @router.task(name='...')" in message
    assert app.tasks["notify"].func is shop.tasks["notify"].func


def test_a_router_task_clashing_with_an_app_task_and_a_duplicate_in_one_router_are_refused() -> None:
    app = QueueTasks(name="own", broker_url="memory://")

    @app.task
    def report() -> None: ...

    router = SyncRouter(name="reports")

    @router.task(name="report")
    def report_again() -> None: ...

    with pytest.raises(ConfigurationError, match="task 'report' registered with @app.task or shared_task"):
        app.include_router(router)
    with pytest.raises(ConfigurationError, match=r"<SyncRouter 'reports'> already has a task named 'report'"):
        router.task(name="report")(lambda: None)


async def test_a_task_declared_after_the_include_is_registered_in_the_app(app: QueueTasks) -> None:
    router = AsyncRouter()
    app.include_routers(router)

    @router.task(priority=4)
    async def late(x: int) -> int:
        return x + 1

    assert app.tasks["late"].priority == 4
    async with running_worker(app):
        record = await late.add_task(1, timeout=10)
    assert record.returning == 2
    with pytest.raises(UnknownOptionError, match="unknown option 'nope'"):
        router.task(nope=1)(lambda: None)
    assert "<lambda>" not in router.tasks and "<lambda>" not in app.tasks


JOBS = """
from qtasks.asyncio import QueueTasks
from tasks import router

app = QueueTasks(name="shop")
app.include_router(router)
"""

TASKS = """
from qtasks import AsyncRouter

router = AsyncRouter()


@router.task(priority=3)
async def add(x: int, y: int) -> int:
    import heavy_dep  # only the worker runs the body

    return heavy_dep.add(x, y)
"""

PRODUCER = """
import sys

import anyio
from qtasks.asyncio import QueueTasks


async def main() -> None:
    client = QueueTasks(name="shop")  # registers nothing: enqueues by name
    by_name = await client.add_task("add", 4, 5, timeout=60)
    print("by name:", by_name.status, by_name.returning, "tasks imported:", "tasks" in sys.modules)
    from jobs import app  # seed 000's API module: imports the tasks and the app that includes them
    from tasks import add

    record = await add.add_task(2, 3, timeout=60)
    print("handle:", record.status, record.returning, record.priority)
    print("heavy_dep:", "heavy_dep" in sys.modules, "worker module:", "qtasks.kernel.worker" in sys.modules,
          "workers:", client.worker, app.worker)


anyio.run(main)
"""


def test_a_process_that_only_enqueues_never_runs_a_worker_nor_imports_the_task_bodies(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "heavy_dep.py").write_text("def add(x: int, y: int) -> int:\n    return x + y\n")
    (tmp_path / "producer.py").write_text(PRODUCER)
    with worker_process(tmp_path, JOBS):
        result = subprocess.run([sys.executable, "producer.py"], cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + (tmp_path / "worker.log").read_text()
    assert result.stdout.splitlines() == [
        "by name: success 9 tasks imported: False",
        "handle: success 5 3",
        "heavy_dep: False worker module: False workers: None None",
    ]


def test_the_routers_example_runs_a_worker_process_and_prints_the_results(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "routers" / "main.py")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "add(2, 3) -> success 5 (priority 5: the app's default)",
        "average([1, 2, 6]) -> success 3.0 (priority 1)",
        "countdown(3) -> success [3, 2, 1]",
        "this process ran a worker: False; imported statistics: False",
    ]
    assert (tmp_path / "qtasks.sqlite3").exists()
