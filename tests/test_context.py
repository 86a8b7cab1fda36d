"""Task context: ``echo=True`` gives every kind of task its handle, and ``self.ctx`` works in each."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.context import AsyncContext, SyncContext
from qtasks.errors import UnknownOptionError
from qtasks.kernel.handles import AsyncTask, SyncTask
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio
WAIT = 10.0


def _facts(ctx: Any, metadata: Any, other: Any) -> dict[str, Any]:
    return {
        "ctx": type(ctx).__name__,
        "uuid": ctx.task_uuid,
        "name": ctx.task_name,
        "logger": ctx.get_logger().name,
        "config": ctx.get_config() is ctx.app.config,
        "components": [ctx.get_component(n) is getattr(ctx.app, n) for n in ("broker", "storage", "config")],
        "global_config": ctx.get_component("global_config").component is ctx.app.global_config.component,
        "status": metadata.status,
        "other": other.returning,
        "cancelled": ctx.cancelled,
    }


async def test_every_kind_of_echo_task_gets_a_working_ctx(app: QueueTasks) -> None:
    seen: dict[str, Any] = {}

    @app.task
    async def other() -> str:
        return "other"

    @app.task(echo=True)
    async def coroutine(self: Any, other_uuid: str) -> str:
        await self.ctx.sleep(0)
        seen["coroutine"] = (type(self), _facts(self.ctx, await self.ctx.get_metadata(), await self.ctx.get_task(other_uuid)))
        return "ok"

    @app.task(echo=True)
    def function(self: Any, other_uuid: str) -> str:
        self.ctx.sleep(0)
        seen["function"] = (type(self), _facts(self.ctx, self.ctx.get_metadata(), self.ctx.get_task(other_uuid)))
        return "ok"

    @app.task(echo=True)
    async def async_generator(self: Any, other_uuid: str) -> Any:
        seen["async_generator"] = (type(self), _facts(self.ctx, await self.ctx.get_metadata(), await self.ctx.get_task(other_uuid)))
        yield "ok"

    @app.task(echo=True)
    def sync_generator(self: Any, other_uuid: str) -> Any:
        seen["sync_generator"] = (type(self), _facts(self.ctx, self.ctx.get_metadata(), self.ctx.get_task(other_uuid)))
        yield "ok"

    records = {}
    async with running_worker(app, concurrency=2):
        done = await other.add_task(timeout=WAIT)
        for name in ("coroutine", "function", "async_generator", "sync_generator"):
            records[name] = await app.add_task(name, str(done.uuid), timeout=WAIT)
    for name, record in records.items():
        assert record.status == "success", record.traceback
        handle, facts = seen[name]
        asynchronous = name in ("coroutine", "async_generator")
        assert handle is (AsyncTask if asynchronous else SyncTask)
        assert facts == {
            "ctx": (AsyncContext if asynchronous else SyncContext).__name__,
            "uuid": record.uuid,
            "name": name,
            "logger": f"qtasks.{app.name}.{name}",
            "config": True,
            "components": [True, True, True],
            "global_config": True,
            "status": "process",
            "other": "other",
            "cancelled": False,
        }


async def test_ctx_cancel_ends_the_task_cancel_with_its_reason(app: QueueTasks) -> None:
    @app.task(echo=True)
    async def gives_up(self: Any) -> None:
        self.ctx.cancel("nothing to do")

    @app.task(echo=True)
    def gives_up_sync(self: Any) -> None:
        self.ctx.cancel()

    async with running_worker(app):
        first = await gives_up.add_task(timeout=WAIT)
        second = await gives_up_sync.add_task(timeout=WAIT)
    assert (first.status, first.cancel_reason) == ("cancel", "nothing to do")
    assert (second.status, second.cancel_reason) == ("cancel", "gives_up_sync.cancel")


async def test_self_add_task_enqueues_children_also_of_another_task(app: QueueTasks) -> None:
    @app.task
    async def square(x: int) -> int:
        return x * x

    @app.task(echo=True)
    async def parent(self: Any, x: int) -> list[int]:
        child = await self.add_task(x, task_name="square", timeout=WAIT)
        again = await self.add_task(x - 1, timeout=WAIT) if x > 1 else None
        return [child.returning, *(again.returning if again else [])]

    @app.task(echo=True)
    def sync_parent(self: Any, x: int) -> int:
        return self.add_task(x, task_name="square", timeout=WAIT).returning

    async with running_worker(app, concurrency=4):
        record = await parent.add_task(3, timeout=WAIT)
        sync_record = await sync_parent.add_task(5, timeout=WAIT)
    assert record.returning == [9, 4, 1]
    assert sync_record.returning == 25


def test_echo_in_a_sync_app() -> None:
    app = SyncQueueTasks(name="context-sync", broker_url="memory://")
    seen: dict[str, Any] = {}

    @app.task(echo=True)
    def job(self: Any, x: int) -> int:
        seen["uuid"] = self.ctx.task_uuid
        seen["status"] = self.ctx.get_metadata().status
        return x + 1

    @app.task(echo=True)
    async def async_job(self: Any) -> str:
        return (await self.ctx.get_metadata()).task_name

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        record = job.add_task(1, timeout=WAIT)
        other = async_job.add_task(timeout=WAIT)
    finally:
        app.stop()
        worker.join(WAIT)
        app.close()
    assert record.returning == 2 and seen == {"uuid": record.uuid, "status": "process"}
    assert other.returning == "async_job"


async def test_get_component_names_the_choices() -> None:
    app = QueueTasks(name="ctx-bad", broker_url="memory://")
    seen: list[str] = []

    @app.task(echo=True)
    async def asks(self: Any) -> None:
        try:
            self.ctx.get_component("database")
        except ValueError as error:
            seen.append(str(error))

    async with running_worker(app):
        await asks.add_task(timeout=WAIT)
    assert seen == ["unknown component 'database': use one of broker, storage, global_config, serializer, config, worker"]


async def test_blocking_the_context_plugin_rejects_echo() -> None:
    app = QueueTasks(name="no-context", broker_url="memory://", disable_plugins=["context"])
    with pytest.raises(UnknownOptionError, match="option 'echo' belongs to plugin 'context', which is disabled"):
        @app.task(echo=True)
        async def job(self: Any) -> None: ...

    @app.task
    async def plain() -> int:
        return 1

    async with running_worker(app):
        assert (await plain.add_task(timeout=WAIT)).returning == 1
