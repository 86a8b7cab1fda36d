"""The application API, async and sync: tasks, options, add_task, get, results, errors."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import anyio
import attrs
import pytest

import qtasks
from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.enums import TaskStatusEnum
from qtasks.errors import ConfigurationError, SerializationError, UnknownOptionError
from qtasks.registries import AsyncTask, SyncTask
from qtasks.testing import running_worker


@pytest.mark.anyio
async def test_add_task_without_timeout_returns_new_record(app: QueueTasks) -> None:
    @app.task
    async def add(x: int, y: int) -> int:
        return x + y

    task = await add.add_task(1, y=2)
    assert task.status == TaskStatusEnum.NEW == "new"
    assert (task.task_name, task.args, task.kwargs, task.priority) == ("add", (1,), {"y": 2}, 0)
    assert await app.get(task.uuid) == task
    assert await app.get(str(task.uuid)) == task
    assert await app.get(uuid.uuid4()) is None


@pytest.mark.anyio
async def test_timeout_returns_final_record_or_none(app: QueueTasks) -> None:
    @app.task
    async def add(x: int, y: int) -> int:
        return x + y

    assert await add.add_task(1, 2, timeout=0.05) is None  # no worker yet: the wait runs out
    async with running_worker(app):
        task = await app.add_task("add", 1, 2, timeout=5)
        assert (task.status, task.returning) == ("success", 3)
        earlier = await app.get((await add.add_task(5, 5)).uuid)
        assert (await earlier.wait_result_async(5)).returning == 10


@pytest.mark.anyio
async def test_none_result_error_traceback_and_unknown_task(app: QueueTasks) -> None:
    @app.task
    def nothing() -> None:
        return None

    @app.task
    def broken() -> None:
        raise KeyError("missing")

    async with running_worker(app):
        done = await app.add_task("nothing", timeout=5)
        failed = await app.add_task("broken", timeout=5)
        unknown = await app.add_task("no_such_task", timeout=5)
    assert (done.status, done.returning) == ("success", None)
    assert failed.status == "error" and "raise KeyError" in failed.traceback and "KeyError: 'missing'" in failed.traceback
    assert unknown.status == "error"
    assert "'no_such_task'" in unknown.traceback and "broken, nothing" in unknown.traceback


def test_task_options_are_checked(app: QueueTasks) -> None:
    with pytest.raises(UnknownOptionError, match=r"unknown option 'retyr' \(did you mean 'retry'"):
        app.task(retyr=3)(lambda: None)

    @app.task(name="named", priority=4, retry=2, retry_on_exc=[ValueError], echo=True, max_time=3.0,
              tags=["a"], description="d", generate_handler=None, executor=None, decode=None,
              middlewares_before=[], middlewares_after=[], extra={"k": 1})
    def function(self: Any) -> None:
        return None

    definition = app.tasks["named"]
    assert (definition.priority, definition.retry, definition.echo, definition.max_time) == (4, 2, True, 3.0)
    assert (definition.tags, definition.description, definition.extra) == (["a"], "d", {"k": 1})
    assert function.retry == 2 and function.task_name == "named"
    with pytest.raises(ConfigurationError, match="already registered"):
        app.task(name="named")(lambda: None)


def test_option_of_blocked_plugin_names_the_plugin() -> None:
    app = QueueTasks(name="blocked", disable_plugins=["retries"])
    with pytest.raises(UnknownOptionError, match="belongs to plugin 'retries', which is disabled"):
        app.task(retry=3)(lambda: None)


@pytest.mark.anyio
async def test_unserialisable_argument_is_named(app: QueueTasks) -> None:
    @app.task
    async def takes(value: Any) -> None:
        return None

    with pytest.raises(SerializationError, match=r"task 'takes': argument 'value'.*not JSON serializable"):
        await takes.add_task(value=object())
    with pytest.raises(SerializationError, match="argument 0"):
        await takes.add_task({1, 2})
    with pytest.raises(ValueError, match="is not a task uuid"):
        await app.get("not-a-uuid")


@pytest.mark.anyio
async def test_attrs_arguments_travel_as_json(app: QueueTasks) -> None:
    @attrs.define
    class Point:
        x: int
        y: int

    @app.task
    async def norm(point: dict[str, int]) -> int:
        return point["x"] ** 2 + point["y"] ** 2

    async with running_worker(app):
        task = await norm.add_task(Point(3, 4), timeout=5)
    assert task.returning == 25


@pytest.mark.anyio
async def test_deferred_call_and_priority_default(app: QueueTasks) -> None:
    @app.task(priority=5)
    async def mul(x: int, y: int) -> int:
        return x * y

    deferred = mul(6, 7, timeout=5)
    async with running_worker(app):
        task = await deferred.add_task()
    assert (task.returning, task.priority) == (42, 5)


@pytest.mark.anyio
async def test_echo_handles_and_child_tasks(app: QueueTasks) -> None:
    seen: dict[str, Any] = {}

    @app.task
    async def child(x: int) -> int:
        return x + 1

    @app.task(echo=True)
    async def async_parent(self: Any, x: int) -> int:
        seen["async"] = (type(self), self.ctx.task_uuid, self.ctx.get_config() is app.config)
        record = await self.ctx.get_metadata()
        seen["status"] = record.status
        return (await self.add_task(x, task_name="child", timeout=5)).returning

    @app.task(echo=True)
    def sync_parent(self: Any, x: int) -> int:
        seen["sync"] = type(self)
        return self.add_task(x, task_name="child", timeout=5).returning

    async with running_worker(app):
        first = await async_parent.add_task(1, timeout=5)
        second = await sync_parent.add_task(10, timeout=5)
    assert (first.returning, second.returning) == (2, 11)
    assert seen["async"] == (AsyncTask, first.uuid, True)
    assert seen["status"] == "process"
    assert seen["sync"] is SyncTask


@pytest.mark.anyio
async def test_generators_sync_and_async_with_handlers(app: QueueTasks) -> None:
    sent: list[Any] = []

    async def async_handler(value: int) -> int:
        return value * 10

    @app.task(generate_handler=lambda v: v + 1)
    def countdown(n: int) -> Any:
        while n:
            sent.append((yield n))
            n -= 1

    @app.task(generate_handler=async_handler, echo=True)
    async def tens(self: Any, n: int) -> Any:
        assert isinstance(self, AsyncTask)
        for i in range(n):
            yield i

    async with running_worker(app):
        sync_result = await countdown.add_task(3, timeout=5)
        async_result = await tens.add_task(3, timeout=5)
    assert sync_result.returning == [4, 3, 2] and sent == [4, 3, 2]
    assert async_result.returning == [0, 10, 20]


@pytest.mark.anyio
async def test_max_time_fails_an_async_task(app: QueueTasks) -> None:
    @app.task(max_time=0.05)
    async def slow() -> None:
        await anyio.sleep(10)

    async with running_worker(app):
        task = await slow.add_task(timeout=5)
    assert task.status == "error" and "max_time=0.05" in task.traceback


@pytest.mark.anyio
async def test_retry_runs_again_and_only_on_listed_errors(app: QueueTasks) -> None:
    attempts: list[int] = []

    @app.task(retry=2, retry_on_exc=[LookupError])
    async def flaky(fail_times: int) -> str:
        attempts.append(1)
        if len(attempts) <= fail_times:
            raise KeyError("flaky")  # a LookupError subclass matches
        return "ok"

    @app.task(retry=3, retry_on_exc=[KeyError])
    async def wrong_error() -> None:
        raise ValueError("not retried")

    async with running_worker(app):
        task = await flaky.add_task(2, timeout=5)
        assert (task.status, task.returning, task.attempts, len(attempts)) == ("success", "ok", 3, 3)
        attempts.clear()
        task = await flaky.add_task(5, timeout=5)
        assert (task.status, len(attempts)) == ("error", 3)
        task = await wrong_error.add_task(timeout=5)
        assert (task.status, task.attempts) == ("error", 1)


def test_sync_app_end_to_end() -> None:
    app = SyncQueueTasks(name="sync-app")

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    async def async_add(x: int, y: int) -> int:
        return x + y

    assert isinstance(add, SyncTask) and isinstance(async_add, SyncTask)
    queued = add.add_task(2, 2)
    assert queued.status == "new" and app.get(queued.uuid).status == "new"
    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    try:
        assert add.add_task(1, 2, timeout=5).returning == 3
        assert app.add_task("async_add", 3, 4, timeout=5).returning == 7
        assert queued.wait_result(5).returning == 4
        assert add(5, 5).add_task().status == "new"
    finally:
        app.stop()
        worker.join(10)
        app.close()
    assert not worker.is_alive()


def test_public_surface() -> None:
    assert qtasks.QueueTasks is SyncQueueTasks
    assert {"QueueTasks", "hookimpl", "Task", "TaskStatusEnum"} <= set(qtasks.__all__)
    assert [s.value for s in TaskStatusEnum] == ["new", "process", "success", "error", "cancel", "retry"]
    from qtasks.schemas.task import Task

    assert [f.name for f in attrs.fields(Task)][:13] == [
        "status", "uuid", "priority", "task_name", "args", "kwargs", "created_at", "updated_at",
        "returning", "traceback", "retry", "retry_child_uuid", "retry_parent_uuid",
    ]


def test_broker_url_validation_hides_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="has no scheme"):
        QueueTasks(broker_url="localhost:6379")
    app = QueueTasks(broker_url="redsi://user:hunter2@localhost:6379/0")
    with pytest.raises(ConfigurationError) as caught:
        _ = app.broker
    message = str(caught.value)
    assert "hunter2" not in message and "***" in message and "did you mean 'redis'" in message
    monkeypatch.setenv("QTASKS_BROKER_URL", "memory://")
    assert QueueTasks().url == "memory://"


@pytest.mark.parametrize(("field", "value", "rule"), [("task_lease", 0, "> 0"), ("result_ttl", -1, "> 0"), ("broker_timeout", "5", "> 0"), ("max_deliveries", 0, ">= 1")])
def test_reliability_settings_are_checked(field: str, value: Any, rule: str) -> None:
    from qtasks import QueueConfig

    with pytest.raises(ValueError, match=f"QueueConfig.{field} must be a number {rule}.*QTASKS_{field.upper()}"):
        QueueConfig(**{field: value})


def test_reliability_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from qtasks import QueueConfig

    monkeypatch.setenv("QTASKS_TASK_LEASE", "2.5")
    monkeypatch.setenv("QTASKS_MAX_DELIVERIES", "3")
    config = QueueConfig()
    assert (config.task_lease, config.max_deliveries, config.result_ttl) == (2.5, 3, 86400.0)


def test_a_setting_given_in_code_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from qtasks import QueueConfig

    monkeypatch.setenv("QTASKS_TASK_LEASE", "2.5")
    assert QueueConfig(task_lease=5.0).task_lease == 5.0


def test_threads_starting_a_sync_app_together_share_one_loop() -> None:
    """A worker thread (``run_forever``) and a producer starting at the same moment must use one
    event loop: on two, the producer's wait is never woken by the worker's result."""
    app = SyncQueueTasks(name="one-loop", broker_url="memory://")
    barrier = threading.Barrier(8)
    loops: list[Any] = []

    def start() -> None:
        barrier.wait()
        loops.append(app._kernel.loop_thread())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    try:
        assert len(loops) == 8 and all(loop is loops[0] for loop in loops)
    finally:
        app.close()
