"""Shared tasks, ``qtasks._state`` and several apps in one process."""

from __future__ import annotations

import gc
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from qtasks import QueueConfig, hookimpl, shared_task
from qtasks import QueueTasks as SyncQueueTasks
from qtasks import _state
from qtasks.asyncio import QueueTasks
from qtasks.errors import ConfigurationError, UnknownOptionError
from qtasks.kernel.handles import AsyncTask, SyncTask
from qtasks.shared import remove_shared_task, shared_tasks
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _forget_shared_tasks() -> Iterator[None]:
    """Shared tasks are process-wide: drop the apps of earlier tests first, and the tasks a test
    declared after it, so that no later app takes them."""
    gc.collect()
    before = set(shared_tasks())
    yield
    for name in set(shared_tasks()) - before:
        remove_shared_task(name)


def test_an_app_created_before_or_after_the_declaration_registers_it() -> None:
    before = QueueTasks(name="before", broker_url="memory://", config=QueueConfig(task_default_priority=3))

    @shared_task
    async def shared_double(x: int) -> int:
        return 2 * x

    after = SyncQueueTasks(name="after", broker_url="memory://")
    assert before.tasks["shared_double"].priority == 3 and after.tasks["shared_double"].priority == 0
    assert before.tasks["shared_double"] is not after.tasks["shared_double"]
    remove_shared_task("shared_double")
    assert "shared_double" not in before.tasks and "shared_double" not in after.tasks
    assert "shared_double" not in QueueTasks(name="later", broker_url="memory://").tasks


async def test_a_shared_task_runs_in_an_async_app_through_app_main() -> None:
    runs: list[int] = []

    @shared_task(priority=4, retry=1, retry_delay=0)
    async def shared_flaky() -> int:
        runs.append(1)
        if len(runs) == 1:
            raise ValueError("first attempt")
        return len(runs)

    @shared_task(name="shared_squares")
    def squares(n: int) -> Iterator[int]:
        for i in range(n):
            yield i * i

    app = QueueTasks(name="shared-async", broker_url="memory://")
    assert _state.app_main is app
    async with running_worker(app):
        flaky = await shared_flaky.add_task(timeout=10)
        counted = await anyio.to_thread.run_sync(lambda: squares.add_task(3, timeout=10))
    assert (flaky.status, flaky.returning, flaky.attempts, flaky.priority) == ("success", 2, 2, 4)
    assert (counted.status, counted.returning) == ("success", [0, 1, 4])


def test_a_shared_task_runs_in_a_sync_app() -> None:
    app = SyncQueueTasks(name="shared-sync", broker_url="memory://")

    @shared_task(description="adds")
    def shared_add(x: int, y: int) -> int:
        return x + y

    assert _state.app_main is app and app.tasks["shared_add"].description == "adds"
    thread = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    thread.start()
    try:
        record = shared_add.add_task(1, 2, timeout=10)
        deferred = shared_add(3, 4).add_task()
        later = app.wait_result(deferred.uuid, 10)
    finally:
        app.stop()
        thread.join(10)
    assert (record.status, record.returning, later.returning) == ("success", 3, 7)


def test_awaiting_picks_the_handle_and_coroutines_default_to_async() -> None:
    async def coroutine() -> None: ...

    async def agen() -> Any:
        yield 1

    def plain() -> None: ...

    handles = {
        "coroutine": shared_task(name="h_coroutine")(coroutine),
        "agen": shared_task(name="h_agen")(agen),
        "plain": shared_task(name="h_plain")(plain),
        "plain awaiting": shared_task(name="h_plain_awaiting", awaiting=True)(plain),
        "coroutine not awaiting": shared_task(name="h_coroutine_sync", awaiting=False)(coroutine),
    }
    kinds = {label: "async" if isinstance(h, AsyncTask) else "sync" if isinstance(h, SyncTask) else "?" for label, h in handles.items()}
    assert kinds == {"coroutine": "async", "agen": "async", "plain": "sync", "plain awaiting": "async", "coroutine not awaiting": "sync"}
    assert inspect.iscoroutinefunction(handles["coroutine"].add_task) and not inspect.iscoroutinefunction(handles["plain"].add_task)


async def test_max_time_is_kept(app: QueueTasks) -> None:
    @shared_task(max_time=0.2)
    async def shared_slow() -> None:
        await anyio.sleep(30)

    assert app.tasks["shared_slow"].max_time == 0.2
    async with running_worker(app):
        record = await shared_slow.add_task(timeout=10)
    assert record.status == "error" and "ran past max_time=0.2s" in record.traceback


async def test_the_handle_uses_the_last_app_created_unless_bound() -> None:
    @shared_task(echo=True)
    async def shared_where(self: Any) -> str:
        return self.ctx.app.name

    with pytest.raises(ConfigurationError, match=r"task 'shared_where' .* has no app to enqueue through: create a QueueTasks first"):
        await shared_where.add_task()
    first = QueueTasks(name="first", broker_url="memory://")
    second = QueueTasks(name="second", broker_url="memory://")
    assert _state.app_main is second and _state.log_main is second.log
    async with running_worker(first), running_worker(second):
        latest = await shared_where.add_task(timeout=10)
        bound = await shared_where.for_app(first).add_task(timeout=10)
    assert (latest.returning, bound.returning) == ("second", "first")


def test_options_are_checked_by_every_app_naming_the_shared_task() -> None:
    QueueTasks(name="live", broker_url="memory://")
    with pytest.raises(UnknownOptionError, match=r"task '<lambda>': unknown option 'retires'.*\(shared task .*<lambda>, which every app registers\)"):
        shared_task(retires=2)(lambda: None)
    assert "<lambda>" not in shared_tasks()

    @shared_task(retry=2)
    def shared_retried() -> None: ...

    with pytest.raises(UnknownOptionError, match=r"option 'retry' belongs to plugin 'retries', which is disabled.*\(shared task .*shared_retried, which every app registers\)"):
        QueueTasks(name="blocked", broker_url="memory://", disable_plugins=["retries"])


def test_a_name_taken_in_an_app_and_a_second_declaration_are_refused() -> None:
    app = QueueTasks(name="taken", broker_url="memory://")

    @app.task
    def shared_report() -> None: ...

    with pytest.raises(ConfigurationError, match=r"app 'taken' already has a task named 'shared_report' \(.*shared_report\), so it cannot take the shared task"):
        shared_task(shared_report.definition.func)
    assert "shared_report" not in shared_tasks()

    @shared_task
    def shared_once() -> None: ...

    with pytest.raises(ConfigurationError, match="a shared task named 'shared_once' is already declared"):
        shared_task(name="shared_once")(lambda: None)
    with pytest.raises(ConfigurationError, match=r"a task named 'shared_once' is already registered \(.*shared_once\)"):
        app.task(name="shared_once")(lambda: None)


def test_state_names_the_last_app_and_its_logger() -> None:
    assert _state.app_main is None  # the conftest resets it after every test
    sync_app = SyncQueueTasks(name="facade", broker_url="memory://")
    assert _state.app_main is sync_app and _state.kernel_of() is sync_app._kernel
    assert _state.log_main is sync_app.log and _state.logger_main is sync_app.log
    async_app = QueueTasks(name="kernel", broker_url="memory://")
    assert _state.app_main is async_app and _state.kernel_of() is async_app


class Seen:
    """Records the tasks one app's worker finished."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @hookimpl
    def qtasks_task_finished(self, worker: Any, task: Any) -> None:
        self.names.append(task.task_name)


async def test_two_apps_in_one_process_keep_their_tasks_plugins_and_queues_apart() -> None:
    """Each app has a task named ``whoami``: each runs in its own app, each app's plugin sees
    only its own tasks, and a task queued on one memory broker never reaches the other."""
    left, right = QueueTasks(name="left", broker_url="memory://"), QueueTasks(name="right", broker_url="memory://")
    seen_left, seen_right = Seen(), Seen()
    left.add_plugin(seen_left)
    right.add_plugin(seen_right)

    @left.task(name="whoami")
    async def left_whoami() -> str:
        return "left"

    @right.task(name="whoami")
    def right_whoami() -> str:
        return "right"

    @right.task
    def only_right() -> str:
        return "only right"

    assert left.registry is not right.registry and left.pm is not right.pm
    async with running_worker(left), running_worker(right):
        from_left = await left_whoami.add_task(timeout=10)
        from_right = await right_whoami.add_task(timeout=10)
        by_name = await left.add_task("whoami", timeout=10)
        unknown = await left.add_task("only_right", timeout=10)
    assert (from_left.returning, from_right.returning, by_name.returning) == ("left", "right", "left")
    assert unknown.status == "error" and "unknown task 'only_right'" in unknown.traceback
    assert seen_left.names == ["whoami", "whoami", "only_right"] and seen_right.names == ["whoami"]
    assert await right.get(from_left.uuid) is None and await left.get(from_right.uuid) is None
