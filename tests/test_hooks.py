"""Every hookspec fires where its docstring says, in order, and its return value does what it says."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import attrs
import pytest

from qtasks import Decision, ExecutionCall, Task, TaskCall, TaskMessage, hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.errors import ConfigurationError, PluginError, UnknownOptionError
from qtasks.kernel.model import ConfigEntry
from qtasks.testing import HookRecorder, running_worker

pytestmark = pytest.mark.anyio

WORKER_SUCCESS = [
    "task_claimed", "task_status", "task_received", "task_scope", "task_resolve_args",
    "task_result", "task_status", "task_finished", "task_acknowledged",
]
WORKER_FAILURE = [
    "task_claimed", "task_status", "task_received", "task_scope", "task_resolve_args",
    "task_failed", "task_status", "task_finished", "task_acknowledged",
]
PRODUCER = ["task_prepare", "task_store", "task_enqueue", "task_enqueued"]
TASK_HOOKS = set(PRODUCER) | set(WORKER_SUCCESS) | set(WORKER_FAILURE)


def make_app(*plugins: Any) -> QueueTasks:
    app = QueueTasks(name="hooks", broker_url="memory://")
    for plugin in plugins:
        app.add_plugin(plugin)
    return app


def with_tasks(app: QueueTasks) -> dict[str, Any]:
    @app.task
    async def ok(x: int) -> int:
        return x * 2

    @app.task
    async def fails() -> None:
        raise ValueError("boom")

    @app.task(echo=True)
    async def cancels(self: Any) -> None:
        self.ctx.cancel("not today")

    return {"ok": ok, "fails": fails, "cancels": cancels}


async def run_one(app: QueueTasks, recorder: HookRecorder, name: str) -> tuple[Task, list[str]]:
    async with running_worker(app):
        recorder.clear()
        task = await app.add_task(name, *((3,) if name == "ok" else ()), timeout=5)
    assert task is not None
    return task, [n for n in recorder.names() if n.removeprefix("qtasks_") in TASK_HOOKS]


async def test_trigger_order_success_error_cancel() -> None:
    app = make_app()
    recorder = HookRecorder(app.pm.specs)
    app.add_plugin(recorder)
    with_tasks(app)
    task, names = await run_one(app, recorder, "ok")
    assert (task.status, task.returning) == ("success", 6)
    assert names == PRODUCER + WORKER_SUCCESS
    task, names = await run_one(app, recorder, "fails")
    assert task.status == "error" and "ValueError: boom" in task.traceback
    assert names == PRODUCER + WORKER_FAILURE
    task, names = await run_one(app, recorder, "cancels")
    assert (task.status, task.cancel_reason) == ("cancel", "not today")
    assert names == PRODUCER + WORKER_FAILURE
    statuses = [c["task"].status for c in recorder.of("task_status")]
    assert statuses == ["process", "cancel"]


async def test_hook_task_prepare() -> None:
    class Reroute:
        @hookimpl
        def qtasks_task_prepare(self, app: Any, call: TaskCall) -> TaskCall:
            return attrs.evolve(call, args=(10,), priority=3)

    app = make_app(Reroute())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", 1, timeout=5)
    assert (task.returning, task.priority) == (20, 3)


async def test_hook_pipe_rejects_dict_return() -> None:
    class Magic:
        @hookimpl
        def qtasks_task_prepare(self, app: Any, call: TaskCall) -> Any:
            return {"args": (1,)}

    app = make_app(Magic())
    with_tasks(app)
    with pytest.raises(PluginError, match="returned dict from qtasks_task_prepare; return a TaskCall"):
        await app.add_task("ok", 1)


async def test_hook_task_store() -> None:
    class Tag:
        @hookimpl
        async def qtasks_task_store(self, app: Any, task: Task) -> Task:
            return attrs.evolve(task, extra={"tagged": True})

    app = make_app(Tag())
    with_tasks(app)
    task = await app.add_task("ok", 1)
    assert (await app.get(task.uuid)).extra == {"tagged": True}


async def test_hook_task_enqueue() -> None:
    class Swap:
        @hookimpl
        def qtasks_task_enqueue(self, app: Any, message: TaskMessage) -> TaskMessage:
            return attrs.evolve(message, args=(50,))

    app = make_app(Swap())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", 1, timeout=5)
    assert task.returning == 100


async def test_hook_task_enqueued() -> None:
    seen: list[str] = []

    class Observer:
        @hookimpl
        async def qtasks_task_enqueued(self, app: Any, task: Task) -> None:
            seen.append(task.status)

    app = make_app(Observer())
    with_tasks(app)
    await app.add_task("ok", 1)
    assert seen == ["new"]


async def test_hook_task_get() -> None:
    class Mask:
        @hookimpl
        def qtasks_task_get(self, app: Any, task: Task) -> Task:
            return attrs.evolve(task, kwargs={"secret": "***"})

    app = make_app(Mask())
    with_tasks(app)
    task = await app.add_task("ok", x=1)
    assert task.kwargs == {"x": 1}
    assert (await app.get(task.uuid)).kwargs == {"secret": "***"}


async def test_hook_task_claimed() -> None:
    class Rewrite:
        @hookimpl
        def qtasks_task_claimed(self, worker: Any, message: TaskMessage) -> TaskMessage:
            return attrs.evolve(message, args=(7,))

    app = make_app(Rewrite())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", 1, timeout=5)
    assert task.returning == 14


async def test_hook_task_received() -> None:
    seen: list[str] = []

    class Observer:
        @hookimpl
        def qtasks_task_received(self, worker: Any, task: Task) -> None:
            seen.append(task.status)

    app = make_app(Observer())
    with_tasks(app)
    async with running_worker(app):
        await app.add_task("ok", 1, timeout=5)
    assert seen == ["process"]


async def test_hook_task_registered() -> None:
    seen: list[str] = []

    class Refuse:
        @hookimpl
        def qtasks_task_registered(self, app: Any, definition: Any) -> None:
            seen.append(definition.name)
            if definition.name.startswith("bad"):
                raise ConfigurationError(f"task {definition.name!r}: refused")

    app = make_app(Refuse())

    @app.task
    async def good() -> None: ...

    with pytest.raises(ConfigurationError, match="'bad_one': refused"):
        @app.task
        async def bad_one() -> None: ...

    assert seen == ["good", "bad_one"]
    assert "good" in app.tasks and "bad_one" not in app.tasks


async def test_hook_task_unique() -> None:
    held: dict[str, Task] = {}

    class Unique:
        @hookimpl
        async def qtasks_task_unique(self, app: Any, task: Task, key: str) -> Task | None:
            assert task.extra["unique_key"] == key
            if key in held:
                return held[key]
            held[key] = task
            return None

    app = make_app(Unique())
    with_tasks(app)
    first = await app.add_task("ok", 1, unique_key="k")
    second = await app.add_task("ok", 2, unique_key="k")
    other = await app.add_task("ok", 3, unique_key="other")
    assert second.uuid == first.uuid and other.uuid != first.uuid
    assert await app.broker.depth() == 2
    with pytest.raises(TypeError, match="unique_key must be a non-empty string"):
        await app.add_task("ok", 1, unique_key="")


async def test_hook_worker_services() -> None:
    started = anyio.Event()
    events: list[str] = []

    async def service() -> None:
        events.append("start")
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            events.append("stopped")

    async def broken() -> None:
        raise RuntimeError("service boom")

    class Services:
        @hookimpl
        def qtasks_worker_services(self, worker: Any) -> Any:
            return service

    class Broken:
        @hookimpl
        def qtasks_worker_services(self, worker: Any) -> Any:
            return broken

    reported: list[str] = []

    class Reporter:
        @hookimpl
        def qtasks_internal_error(self, app: Any, error: BaseException, where: str) -> None:
            reported.append(str(error))

    app = make_app(Services(), Broken(), Reporter())
    with_tasks(app)
    async with running_worker(app):
        with anyio.fail_after(5):
            await started.wait()
        assert (await app.add_task("ok", 2, timeout=5)).returning == 4  # the worker goes on
    assert events == ["start", "stopped"]
    assert reported == ["service boom"]


async def test_hook_task_cancel_running() -> None:
    asked: list[tuple[str, str]] = []
    release = anyio.Event()
    started = anyio.Event()

    class Stopper:
        @hookimpl
        async def qtasks_task_cancel_running(self, app: Any, task: Task, reason: str) -> bool:
            asked.append((str(task.uuid), reason))
            release.set()
            return True

    app = QueueTasks(name="hooks", broker_url="memory://", plugins=[Stopper()], disable_plugins=["cancel"])

    @app.task
    async def waits() -> str:
        started.set()
        await release.wait()
        return "released"

    async with running_worker(app):
        task = await app.add_task("waits")
        with anyio.fail_after(5):
            await started.wait()
        assert await app.cancel(task.uuid, "stop it") is True
        assert (await app.wait_result(task.uuid, 5)).returning == "released"
    assert asked == [(str(task.uuid), "stop it")]

    bare = QueueTasks(name="hooks-bare", broker_url="memory://", disable_plugins=["cancel"])
    release2, started2 = anyio.Event(), anyio.Event()

    @bare.task
    async def waits_too() -> None:
        started2.set()
        await release2.wait()

    async with running_worker(bare):
        task = await bare.add_task("waits_too")
        with anyio.fail_after(5):
            await started2.wait()
        with pytest.raises(UnknownOptionError, match="the builtin 'cancel' plugin is disabled"):
            await bare.cancel(task.uuid)
        release2.set()


async def test_hook_make_stream() -> None:
    class Fixed:
        def __init__(self, task: Task) -> None:
            self.task = task

    class Streams:
        @hookimpl
        def qtasks_make_stream(self, app: Any, task: Task) -> Any:
            return Fixed(task)

    app = QueueTasks(name="hooks", broker_url="memory://", plugins=[Streams()])
    with_tasks(app)
    task = await app.add_task("ok", 1)
    stream = task.stream()
    assert isinstance(stream, Fixed) and stream.task is task

    bare = QueueTasks(name="hooks-bare", broker_url="memory://", disable_plugins=["generators"])
    with_tasks(bare)
    task = await bare.add_task("ok", 1)
    with pytest.raises(RuntimeError, match="'generators' plugin is disabled"):
        task.stream()


async def test_hook_task_resolve_args() -> None:
    class Inject:
        @hookimpl
        async def qtasks_task_resolve_args(self, worker: Any, call: ExecutionCall) -> ExecutionCall:
            return attrs.evolve(call, kwargs={"x": 21})

    app = make_app(Inject())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", timeout=5)
    assert task.returning == 42


async def test_hook_task_scope() -> None:
    events: list[str] = []

    class Scope:
        @hookimpl
        def qtasks_task_scope(self, worker: Any, call: ExecutionCall) -> Any:
            @contextlib.asynccontextmanager
            async def around() -> Any:
                events.append(f"enter {call.definition.name}")
                try:
                    yield
                except Exception as error:
                    events.append(f"error {type(error).__name__}")
                    raise
                finally:
                    events.append(f"exit {call.definition.name}")

            return around()

    class SyncScope:
        @hookimpl
        def qtasks_task_scope(self, worker: Any, call: ExecutionCall) -> Any:
            @contextlib.contextmanager
            def around() -> Any:
                events.append("sync enter")
                yield
                events.append("sync exit")

            return around()

    app = make_app(Scope(), SyncScope())
    with_tasks(app)
    async with running_worker(app):
        await app.add_task("ok", 1, timeout=5)
        failed = await app.add_task("fails", timeout=5)
    assert failed.status == "error"
    assert events[:4] == ["sync enter", "enter ok", "exit ok", "sync exit"]
    assert events[4:] == ["sync enter", "enter fails", "error ValueError", "exit fails"]


async def test_hook_task_yielded() -> None:
    class Double:
        @hookimpl
        def qtasks_task_yielded(self, worker: Any, call: ExecutionCall, value: Any) -> Any:
            return value * 2

    app = make_app(Double())
    received: list[Any] = []

    @app.task
    async def stream(n: int) -> Any:
        for i in range(n):
            received.append((yield i))

    async with running_worker(app):
        task = await stream.add_task(3, timeout=5)
    assert task.returning == [0, 2, 4]
    assert received == [0, 2, 4]


async def test_hook_task_result() -> None:
    class Wrap:
        @hookimpl
        def qtasks_task_result(self, worker: Any, call: ExecutionCall, result: Any) -> Any:
            return {"value": result}

    app = make_app(Wrap())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", 2, timeout=5)
    assert task.returning == {"value": 4}


async def test_hook_task_failed() -> None:
    class Forgive:
        @hookimpl
        def qtasks_task_failed(self, worker: Any, call: ExecutionCall, error: BaseException) -> Decision | None:
            if isinstance(error, ValueError):
                return Decision(action="succeed", result="forgiven")
            return None

    app = make_app(Forgive())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("fails", timeout=5)
    assert (task.status, task.returning) == ("success", "forgiven")


async def test_hook_task_status() -> None:
    class Annotate:
        @hookimpl
        def qtasks_task_status(self, worker: Any, task: Task) -> Task:
            return attrs.evolve(task, extra={**task.extra, f"saw_{task.status}": True})

    app = make_app(Annotate())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", 1, timeout=5)
    assert task.extra == {"saw_process": True, "saw_success": True}


async def test_hook_task_finished_and_acknowledged_order() -> None:
    order: list[str] = []

    class Observer:
        @hookimpl
        def qtasks_task_finished(self, worker: Any, task: Task) -> None:
            order.append(f"finished {task.status}")

        @hookimpl
        def qtasks_task_acknowledged(self, worker: Any, message: TaskMessage) -> None:
            order.append(f"acknowledged {message.task_name}")

    app = make_app(Observer())
    with_tasks(app)
    async with running_worker(app):
        await app.add_task("ok", 1, timeout=5)
    assert order == ["finished success", "acknowledged ok"]


async def test_hook_task_finished() -> None:
    await test_hook_task_finished_and_acknowledged_order()


async def test_hook_task_acknowledged() -> None:
    await test_hook_task_finished_and_acknowledged_order()


async def test_hook_startup_and_shutdown() -> None:
    events: list[str] = []

    class Lifecycle:
        @hookimpl
        def qtasks_startup(self, app: Any, component: str) -> None:
            events.append(f"start {component}")

        @hookimpl
        async def qtasks_shutdown(self, app: Any, component: str) -> None:
            events.append(f"stop {component}")

    app = make_app(Lifecycle())
    async with running_worker(app):
        pass
    assert events == [
        "start app", "start broker", "start storage", "start global_config", "start worker",
        "stop worker", "stop global_config", "stop storage", "stop broker", "stop app",
    ]


async def test_hook_startup() -> None:
    await test_hook_startup_and_shutdown()


async def test_hook_shutdown() -> None:
    await test_hook_startup_and_shutdown()


async def test_hook_pinged_and_flushed() -> None:
    recorder_app = make_app()
    recorder = HookRecorder(recorder_app.pm.specs, only={"qtasks_pinged", "qtasks_flushed"})
    recorder_app.add_plugin(recorder)
    with_tasks(recorder_app)
    await recorder_app.add_task("ok", 1)
    assert await recorder_app.ping(server=False) is True
    assert await recorder_app.ping() is False  # no worker serves this app
    await recorder_app.flush_all()
    assert [c["alive"] for c in recorder.of("pinged")] == [True, False]
    assert [c["component"] for c in recorder.of("flushed")] == ["broker", "storage"]
    assert await recorder_app.broker.depth() == 0


async def test_hook_pinged() -> None:
    await test_hook_pinged_and_flushed()


async def test_hook_flushed() -> None:
    await test_hook_pinged_and_flushed()


async def test_hook_global_config_set_and_read() -> None:
    class Upper:
        @hookimpl
        def qtasks_global_config_set(self, app: Any, entry: ConfigEntry) -> ConfigEntry:
            return attrs.evolve(entry, value=str(entry.value).upper())

        @hookimpl
        def qtasks_global_config_read(self, app: Any, name: str, key: str | None, value: Any) -> Any:
            return f"<{value}>" if key is not None else None

    app = make_app(Upper())
    await app.global_config.set("main", "mode", "fast")
    assert await app.global_config.get("mode", "main") == "<FAST>"
    assert await app.global_config.get_all("main") == {"mode": "FAST"}
    assert await app.global_config.get_match("ma*") == {"main": {"mode": "FAST"}}


async def test_hook_global_config_set() -> None:
    await test_hook_global_config_set_and_read()


async def test_hook_global_config_read() -> None:
    await test_hook_global_config_set_and_read()


async def test_hook_internal_error_and_observer_isolation() -> None:
    reported: list[str] = []

    class Broken:
        @hookimpl
        def qtasks_task_finished(self, worker: Any, task: Task) -> None:
            raise RuntimeError("observer bug")

        @hookimpl
        def qtasks_internal_error(self, app: Any, error: BaseException, where: str) -> None:
            reported.append(f"{type(error).__name__} in {where}")

    app = make_app(Broken())
    with_tasks(app)
    async with running_worker(app):
        task = await app.add_task("ok", 1, timeout=5)
    assert task.status == "success"
    assert reported == ["RuntimeError in qtasks_task_finished in plugin 'Broken'"]


async def test_hook_internal_error() -> None:
    await test_hook_internal_error_and_observer_isolation()


async def test_hook_stats_inspected() -> None:
    seen: list[Any] = []

    class Observer:
        @hookimpl
        def qtasks_stats_inspected(self, app: Any, stats: Any) -> None:
            seen.append(stats)

    app = make_app(Observer())
    from qtasks.stats import AsyncStats

    stats = AsyncStats(app)
    inspected = await stats.inspect()
    assert seen == [stats]
    assert "hooks" in inspected.app(json=True)
