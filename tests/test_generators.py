"""Generator tasks: the handler's value is sent back, the return value is recorded, values stream as they come."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.generators import RETURN_KEY, stream_name
from qtasks.errors import UnknownOptionError
from qtasks.testing import running_worker
from subprocesses import worker_process

pytestmark = pytest.mark.anyio
WAIT = 10.0


async def test_handler_values_are_sent_back_and_the_return_value_is_recorded(app: QueueTasks) -> None:
    received: list[Any] = []

    async def tenfold(value: int) -> int:
        return value * 10

    @app.task(generate_handler=tenfold)
    def sync_gen(n: int) -> Any:
        for i in range(n):
            received.append((yield i))
        return f"made {n}"

    @app.task(generate_handler=lambda value: value + 1)
    async def async_gen(n: int) -> Any:
        for i in range(n):
            received.append((yield i))

    async with running_worker(app):
        first = await sync_gen.add_task(3, timeout=WAIT)
        second = await async_gen.add_task(2, timeout=WAIT)
    assert first.returning == [0, 10, 20] and first.extra[RETURN_KEY] == "made 3"
    assert second.returning == [1, 2] and RETURN_KEY not in second.extra
    assert received == [0, 10, 20, 1, 2]


async def test_yield_from_a_plain_iterator_works_and_other_values_are_sent_back(app: QueueTasks) -> None:
    received: list[Any] = []

    @app.task(generate_handler=lambda value: value * 10)
    def delegates() -> Any:
        yield from [1, 2]
        yield from range(3, 4)
        received.append((yield 4))

    async with running_worker(app):
        record = await delegates.add_task(timeout=WAIT)
    assert record.status == "success", record.traceback
    assert record.returning == [10, 20, 30, 40] and received == [40]


async def test_a_caller_follows_values_while_the_task_runs(app: QueueTasks) -> None:
    """Each value reaches the reader before the generator makes the next one."""
    steps = [anyio.Event() for _ in range(3)]

    @app.task
    async def paced() -> Any:
        for index, step in enumerate(steps):
            yield {"index": index}
            await step.wait()  # released by the reader once it saw this value

    @app.task
    def sync_paced(n: int) -> Any:
        for index in range(n):
            yield index
        return "done"

    seen: list[Any] = []
    async with running_worker(app):
        task = await paced.add_task()
        async for value in task.stream():
            seen.append(value)
            steps[value["index"]].set()
        final = await app.wait_result(task.uuid, WAIT)
        other = await sync_paced.add_task(4)
        streamed = [value async for value in other.stream()]
    assert seen == [{"index": 0}, {"index": 1}, {"index": 2}]
    assert final.returning == seen
    assert streamed == [0, 1, 2, 3]
    assert await app.global_config.component.get_all(stream_name(app, task.uuid)) == {}  # cleaned up


def test_a_sync_iterator_follows_values_in_a_sync_app() -> None:
    app = SyncQueueTasks(name="gen-sync", broker_url="memory://")
    release = threading.Event()

    @app.task
    def waits_between(n: int) -> Any:
        yield "first"
        release.wait(WAIT)
        for index in range(n):
            yield index

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        task = waits_between.add_task(2)
        values = []
        for value in task.stream():
            values.append(value)
            release.set()  # the first value arrived while the task still waits
    finally:
        app.stop()
        worker.join(WAIT)
        app.close()
    assert values == ["first", 0, 1]


async def test_a_failed_generator_stream_ends_with_the_values_made(app: QueueTasks) -> None:
    read_first = anyio.Event()

    @app.task
    async def breaks() -> Any:
        yield 1
        await read_first.wait()
        raise ValueError("broken")

    values = []
    async with running_worker(app):
        task = await breaks.add_task()
        async for value in task.stream():
            values.append(value)
            read_first.set()
        final = await app.wait_result(task.uuid, WAIT)
    assert final.status == "error" and "broken" in final.traceback
    assert values == [1]


async def test_stream_false_publishes_nothing_but_stream_still_ends_with_the_result(app: QueueTasks) -> None:
    published: list[str] = []
    original = app.global_config.component

    @app.task(stream=False)
    async def quiet() -> Any:
        yield 1
        yield 2

    async with running_worker(app):
        original_set = app.global_config.component.set

        async def spy(name: str, key: str, value: Any) -> None:
            published.append(name)
            await original_set(name, key, value)

        app.global_config.component.set = spy
        task = await quiet.add_task()
        values = [value async for value in task.stream()]
    assert values == [1, 2] and published == []
    assert original is app.global_config.component


async def test_bad_stream_option_and_blocked_plugin() -> None:
    app = QueueTasks(name="gen-bad", broker_url="memory://")
    with pytest.raises(Exception, match="stream=1: use True"):
        @app.task(stream=1)
        async def bad() -> Any:
            yield 1

    blocked = QueueTasks(name="no-generators", broker_url="memory://", disable_plugins=["generators"])
    with pytest.raises(UnknownOptionError, match="option 'generate_handler' belongs to plugin 'generators', which is disabled"):
        @blocked.task(generate_handler=print)
        async def handled() -> Any:
            yield 1

    @blocked.task
    def plain() -> Any:
        yield 1
        return "kept only with the plugin"

    async with running_worker(blocked):
        record = await plain.add_task(timeout=WAIT)
    assert record.returning == [1] and RETURN_KEY not in record.extra


# -- across processes: values published by a worker process on the SQLite file -------------------

JOBS = '''
import time
from qtasks.asyncio import QueueTasks

app = QueueTasks(name="gen-jobs")

@app.task
def paced(n):
    for index in range(n):
        yield index
        time.sleep(0.05)
    return "done"
'''


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Any]:
    with worker_process(tmp_path, JOBS, concurrency=1) as process:
        yield process


@pytest.mark.slow
async def test_values_stream_from_a_worker_process(worker: Any) -> None:
    app = QueueTasks(name="gen-jobs")
    try:
        task = await app.add_task("paced", 20)
        values = []
        running_when_seen = []
        async for value in task.stream():
            values.append(value)
            running_when_seen.append((await app.get(task.uuid)).status)
        final = await app.wait_result(task.uuid, 30)
    finally:
        await app.close()
    assert values == list(range(20))
    assert final.extra[RETURN_KEY] == "done"
    assert "process" in running_when_seen  # values arrived while the task still ran
