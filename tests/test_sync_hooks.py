"""The sync-only hooks: configure, register_task_options and the make_* component factories."""

from __future__ import annotations

from typing import Any

import pytest

from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.executor import TaskExecutor
from qtasks.builtin_plugins.memory_global_config import MemoryGlobalConfig
from qtasks.builtin_plugins.memory_storage import MemoryStorage
from qtasks.builtin_plugins.serializer import JsonSerializer
from qtasks.kernel.model import TaskMessage
from qtasks.testing import running_worker

pytestmark = pytest.mark.anyio


def test_hook_configure() -> None:
    seen: list[list[str]] = []

    class Configure:
        @hookimpl
        def qtasks_configure(self, app: Any) -> None:
            seen.append(sorted(name for name, _ in app.pm.list_name_plugin()))

    app = QueueTasks(name="configure", plugins=[Configure()])
    assert len(seen) == 1 and "memory_broker" in seen[0] and "Configure" in seen[0]
    app.add_plugin(Configure(), name="late")  # added after construction: not configured again
    assert len(seen) == 1


async def test_hook_register_task_options() -> None:
    class Owner:
        @hookimpl
        def qtasks_register_task_options(self, register: Any) -> None:
            register("queue", "default", "Which queue the task goes to.")

    app = QueueTasks(name="options", plugins=[Owner()])

    @app.task(queue="fast")
    async def one() -> None:
        return None

    @app.task
    async def two() -> None:
        return None

    assert one.definition.option("queue") == "fast" and two.definition.option("queue") == "default"
    assert app.registry.options["queue"].owner == "Owner"


async def test_hook_make_storage_and_make_global_config() -> None:
    made: list[str] = []

    class Components:
        @hookimpl
        def qtasks_make_storage(self, app: Any, url: str) -> MemoryStorage:
            made.append(f"storage {url}")
            return MemoryStorage()

        @hookimpl
        def qtasks_make_global_config(self, app: Any, url: str) -> MemoryGlobalConfig:
            made.append(f"global_config {url}")
            return MemoryGlobalConfig()

    app = QueueTasks(name="components", broker_url="memory://", plugins=[Components()])
    await app.start()
    assert made == ["storage memory://", "global_config memory://"]
    assert isinstance(app.storage, MemoryStorage)


async def test_hook_make_storage() -> None:
    await test_hook_make_storage_and_make_global_config()


async def test_hook_make_global_config() -> None:
    await test_hook_make_storage_and_make_global_config()


async def test_hook_make_broker() -> None:
    class NoBroker:
        @hookimpl(tryfirst=True)
        def qtasks_make_broker(self, app: Any, url: str) -> None:
            return None  # declines: the builtin still provides the broker

    app = QueueTasks(name="declines", plugins=[NoBroker()])
    await app.start()
    assert type(app.broker).__name__ == "SqliteBroker"


async def test_hook_make_serializer() -> None:
    class Upper(JsonSerializer):
        def dumps(self, message: TaskMessage) -> bytes:
            return super().dumps(message).upper()

        def loads(self, payload: bytes) -> TaskMessage:
            return super().loads(payload.lower())

    class Provide:
        @hookimpl
        def qtasks_make_serializer(self, app: Any) -> JsonSerializer:
            return Upper()

    app = QueueTasks(name="serializer", plugins=[Provide()])

    @app.task
    async def echo(word: str) -> str:
        return word

    async with running_worker(app):
        task = await echo.add_task("word", timeout=5)
    assert task.returning == "word"
    assert app.broker is not None and isinstance(app.serializer, Upper)


async def test_hook_make_executor() -> None:
    class Doubling(TaskExecutor):
        async def execute(self, worker: Any, call: Any) -> Any:
            return 2 * await super().execute(worker, call)

    class Provide:
        @hookimpl
        def qtasks_make_executor(self, app: Any, task: Any) -> Any:
            return Doubling(task) if task.name == "doubled" else None

    app = QueueTasks(name="executor", plugins=[Provide()])

    @app.task(name="doubled")
    async def doubled() -> int:
        return 21

    @app.task(executor=Doubling)
    def by_option() -> int:
        return 5

    @app.task
    def plain() -> int:
        return 5

    async with running_worker(app):
        assert (await doubled.add_task(timeout=5)).returning == 42
        assert (await by_option.add_task(timeout=5)).returning == 10
        assert (await plain.add_task(timeout=5)).returning == 5
