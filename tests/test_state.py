"""State: AsyncState / SyncState injected by annotation, atomic updates, sharing, refusals, the example."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional
from uuid import uuid4

import anyio
import pytest
import redis.asyncio as redis_asyncio

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.errors import ConfigurationError, SerializationError, UnknownOptionError
from qtasks.plugins import AsyncState, SyncState
from qtasks.testing import running_worker
from subprocesses import run_example

from conformance.helpers import serving
from redis_process import SHARED_URL

pytestmark = pytest.mark.anyio


class Counters(AsyncState):
    """The async tasks' state in these tests."""


class Tally(SyncState):
    """The sync tasks' state in these tests."""


class SameAsCounters(SyncState):
    """A sync view of the state of ``Counters``: the same ``state_name``."""

    state_name = "Counters"


@dataclass
class Point:
    x: int
    y: int


@contextmanager
def sync_worker(app: SyncQueueTasks, concurrency: int = 2) -> Iterator[None]:
    """Serve a sync app in a thread (its loop thread runs the worker); stop it on exit."""
    thread = threading.Thread(target=app.run_forever, kwargs={"concurrency": concurrency})
    thread.start()
    try:
        yield
    finally:
        app.stop()
        thread.join(10)


async def test_an_async_task_gets_its_state_by_annotation_and_uses_every_method(app: QueueTasks) -> None:
    @app.task
    async def visit(page: str, state: Counters) -> Any:
        await state.set(page, (await state.get(page, 0)) + 1)
        await state.set("last", Point(1, 2))
        after = await state.update({"two words": True}, seen=page)
        await state.delete("two words")
        return {"after": after, "all": await state.get(), "also": await state.get_all(), "missing": await state.get("nope", "dflt")}

    async with running_worker(app):
        first = await visit.add_task("home", timeout=5)
        second = await visit.add_task("home", timeout=5)
    assert first.returning["after"] == {"home": 1, "last": {"x": 1, "y": 2}, "two words": True, "seen": "home"}
    assert second.returning["all"] == second.returning["also"] == {"home": 2, "last": {"x": 1, "y": 2}, "seen": "home"}
    assert second.returning["missing"] == "dflt"
    state = Counters(app)  # usable outside a task too, bound to the app
    assert state.name == "qtasks:state:test:Counters"
    copy = await state.get()
    copy["home"] = 99  # a copy: changing it changes nothing stored
    assert await state.get("home") == 2
    await state.clear()
    assert await state.get() == {}


async def test_optional_annotated_string_and_passed_arguments(app: QueueTasks) -> None:
    """Optional, Annotated and string annotations are injected; an argument the caller passed
    (by name or position) is left alone."""

    @app.task
    async def forms(a: Optional[Counters] = None, b: Annotated[Counters, "meta"] = None, c: "Counters | None" = None) -> list[str]:
        return [type(value).__name__ for value in (a, b, c)]

    @app.task
    async def passed(label: str, state: Counters | None = None) -> str:
        return f"{label}: {type(state).__name__}"

    async with running_worker(app):
        injected = await forms.add_task(timeout=5)
        by_name = await passed.add_task("named", state="given", timeout=5)
        by_position = await passed.add_task("positional", "given", timeout=5)
        not_passed = await passed.add_task("absent", timeout=5)
    assert injected.returning == ["Counters", "Counters", "Counters"]
    assert (by_name.returning, by_position.returning, not_passed.returning) == ("named: str", "positional: str", "absent: Counters")


async def test_generators_get_the_state_of_their_kind(app: QueueTasks) -> None:
    @app.task
    async def async_pages(state: Counters) -> Any:
        for page in (1, 2):
            await state.set(f"async {page}", page)
            yield page

    @app.task
    def sync_pages(state: Tally) -> Any:
        for page in (1, 2):
            state.set(f"sync {page}", page)  # from a worker thread, back into the app's loop
            yield page

    async with running_worker(app):
        assert (await async_pages.add_task(timeout=5)).returning == [1, 2]
        assert (await sync_pages.add_task(timeout=5)).returning == [1, 2]
    assert await Counters(app).get() == {"async 1": 1, "async 2": 2}
    assert await anyio.to_thread.run_sync(Tally(app).get) == {"sync 1": 1, "sync 2": 2}  # blocking: from a thread


async def test_concurrent_updates_from_many_tasks_keep_every_key(app: QueueTasks) -> None:
    @app.task
    async def add_async(n: int, state: Counters) -> None:
        await anyio.sleep(0)  # interleave with the other tasks
        await state.update({f"async {n}": n})

    @app.task
    def add_sync(n: int, state: SameAsCounters) -> None:
        state.update({f"sync {n}": n})

    async with running_worker(app, concurrency=10):
        tasks = await add_async.add_tasks([(n,) for n in range(20)]) + await add_sync.add_tasks([(n,) for n in range(20)])
        records = [await app.wait_result(task.uuid, 10) for task in tasks]
    assert {record.status for record in records} == {"success"}
    expected = {f"async {n}": n for n in range(20)} | {f"sync {n}": n for n in range(20)}
    assert await Counters(app).get() == expected  # state_name "Counters": one state, two classes


def test_a_sync_app_runs_sync_tasks_with_their_state() -> None:
    app = SyncQueueTasks(name="sync-state", broker_url="memory://")

    @app.task
    def count(word: str, state: Tally) -> dict[str, Any]:
        return state.update({word: state.get(word, 0) + 1})

    @app.task
    def read(state: Tally) -> Any:
        return state.get()

    with sync_worker(app):
        assert count.add_task("a", timeout=5).returning == {"a": 1}
        assert count.add_task("a", timeout=5).returning == {"a": 2}
        tally = Tally(app)  # the sync app's main thread: the call goes to the app's loop thread
        tally.set("b", [1, 2])
        assert read.add_task(timeout=5).returning == {"a": 2, "b": [1, 2]}
        tally.delete("a")
        assert tally.get_all() == {"b": [1, 2]}
        tally.clear()
        assert tally.get() == {}
    app.close()


async def test_a_value_that_is_not_json_names_the_key_and_the_fix(app: QueueTasks) -> None:
    state = Counters(app)
    with pytest.raises(SerializationError, match=r"Counters: key 'tags': the value cannot be stored as JSON .*attrs classes or dataclasses"):
        await state.set("tags", {"a", "b"})
    with pytest.raises(SerializationError, match="key 'bad'"):
        await state.update(good=1, bad=object())
    with pytest.raises(TypeError, match="a key must be a non-empty string, got 3"):
        await state.set(3, "x")  # type: ignore[arg-type]
    assert await state.get() == {}  # the update wrote nothing
    with pytest.raises(TypeError, match=r"Counters\(app\): pass the QueueTasks app"):
        Counters(None)


@pytest.mark.parametrize(("define", "message"), [
    ("def job(state: Counters) -> None: ...",
     "task 'job': parameter 'state' is an AsyncState (Counters) but job is a sync function; subclass SyncState instead"),
    ("def job(state: Counters):\n    yield 1",
     "task 'job': parameter 'state' is an AsyncState (Counters) but job is a sync generator function; subclass SyncState instead"),
    ("async def job(state: Tally) -> None: ...",
     "task 'job': parameter 'state' is a SyncState (Tally) but job is an async function, where its blocking calls would stop the event loop; "
     "subclass AsyncState instead"),
    ("async def job(state: Tally):\n    yield 1",
     "task 'job': parameter 'state' is a SyncState (Tally) but job is an async generator function"),
    ("async def job(state: Counters, /) -> None: ...",
     "task 'job': parameter 'state' is a state (Counters) and positional-only; remove the '/'"),
])
def test_a_state_of_the_wrong_kind_is_refused_at_registration(define: str, message: str) -> None:
    namespace: dict[str, Any] = {"Counters": Counters, "Tally": Tally}
    exec(define, namespace)  # noqa: S102 - the function under test, defined from its text
    app = QueueTasks(name="refused", broker_url="memory://")
    with pytest.raises(ConfigurationError) as caught:
        app.task(namespace["job"])
    assert str(caught.value).startswith(message)
    assert "job" not in app.tasks


@pytest.mark.parametrize("sync", [False, True])
def test_a_blocked_state_plugin_rejects_tasks_with_a_state_parameter(sync: bool) -> None:
    app = (SyncQueueTasks if sync else QueueTasks)(name="no-state", broker_url="memory://", disable_plugins=["state"])
    with pytest.raises(UnknownOptionError, match="task 'job': parameter 'state' uses a State annotation, which plugin 'state' provides, and it is disabled"):
        @app.task
        def job(state: Tally) -> None: ...

    @app.task
    def fine(x: int) -> int:
        return x


@pytest.fixture(params=["redis", "sqlite"])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A URL shared by app objects (and processes) and a fresh app name; Redis keys are dropped after."""
    name = f"state-{uuid4().hex[:8]}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.sqlite3", name
        return
    yield SHARED_URL, name
    client = redis_asyncio.Redis.from_url(SHARED_URL)
    keys = [key async for key in client.scan_iter(match=f"qtasks:{{{name}}}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_workers_share_one_state_on_redis_and_sqlite(shared_url: tuple[str, str]) -> None:
    """Two app objects with one name (two workers, as two processes would be) update the same
    state concurrently; every key arrives, and each app reads what the other wrote. Ten tasks
    wait until all ten run, so each worker (five slots) runs five of them."""
    url, name = shared_url
    apps = [QueueTasks(name=name, broker_url=url), QueueTasks(name=name, broker_url=url)]
    ran_on: dict[int, int] = {}
    all_running = anyio.Event()
    for index, app in enumerate(apps):
        @app.task(name="mark")
        async def mark(n: int, state: Counters, index: int = index) -> None:
            ran_on[n] = index
            if len(ran_on) == 10:
                all_running.set()
            with anyio.fail_after(10):
                await all_running.wait()
            await state.update({f"task {n}": index})
    try:
        async with serving(apps[0], concurrency=5), serving(apps[1], concurrency=5):
            tasks = await apps[0].add_tasks("mark", [(n,) for n in range(10)])
            records = [await apps[1].wait_result(task.uuid, 20) for task in tasks]
        assert {record.status for record in records} == {"success"}
        assert sorted(ran_on.values()) == [0] * 5 + [1] * 5
        expected = {f"task {n}": ran_on[n] for n in range(10)}
        assert await Counters(apps[0]).get() == await Counters(apps[1]).get() == expected
        await Counters(apps[1]).set("from b", True)
        assert await Counters(apps[0]).get("from b") is True
    finally:
        for app in apps:
            await app.close()


def test_the_state_example_shares_state_between_async_and_sync_tasks(tmp_path: Path) -> None:
    assert run_example("state", tmp_path) == [
        "crawled: {'https://example.org/': 2000, 'https://example.org/about': 2500, 'https://example.org/blog': 2400}",
        "report: {'pages': 3, 'bytes': 6900}",
        "after clear: {}",
    ]
