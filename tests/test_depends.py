"""Depends: every provider kind, both syntaxes, each scope created once and closed exactly once."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest

import qtasks
from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.depends import Depends, ScopeEnum
from qtasks.errors import ConfigurationError, TaskCancelError, UnknownOptionError
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.worker import Worker
from qtasks.plugins import Depends as PublicDepends
from qtasks.plugins import ScopeEnum as PublicScopeEnum
from qtasks.testing import running_worker
from subprocesses import run_example

pytestmark = pytest.mark.anyio

EVENTS: list[str] = []  # what the providers below did, in order (cleared before each test)
THREADS: dict[str, int] = {}  # the thread each provider step ran in


@pytest.fixture(autouse=True)
def _fresh_events() -> None:
    EVENTS.clear()
    THREADS.clear()


# -- providers of every kind (module level: this module's annotations are strings) ---------------


def plain() -> str:
    THREADS["plain"] = threading.get_ident()
    EVENTS.append("open plain")
    return "plain"


async def coroutine() -> str:
    EVENTS.append("open coroutine")
    return "coroutine"


def sync_gen() -> Iterator[str]:
    THREADS["open sync_gen"] = threading.get_ident()
    EVENTS.append("open sync_gen")
    try:
        yield "sync_gen"
    finally:
        THREADS["close sync_gen"] = threading.get_ident()
        EVENTS.append("close sync_gen")


async def async_gen() -> AsyncIterator[str]:
    THREADS["open async_gen"] = threading.get_ident()
    EVENTS.append("open async_gen")
    try:
        yield "async_gen"
    finally:
        await anyio.lowlevel.checkpoint()  # a cleanup that awaits runs to its end
        EVENTS.append("close async_gen")


@contextmanager
def sync_cm() -> Iterator[str]:
    EVENTS.append("open sync_cm")
    yield "sync_cm"
    EVENTS.append("close sync_cm")


@asynccontextmanager
async def async_cm() -> AsyncIterator[str]:
    EVENTS.append("open async_cm")
    yield "async_cm"
    EVENTS.append("close async_cm")


class SyncResource:
    """A context-manager object that records its use."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> str:
        EVENTS.append(f"open {self.label}")
        return self.label

    def __exit__(self, *exc_info: Any) -> None:
        EVENTS.append(f"close {self.label}")


class AsyncResource(SyncResource):
    """An async context-manager object (with the sync protocol too: the async one is used)."""

    async def __aenter__(self) -> str:
        EVENTS.append("async")
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)


def returns_sync_cm() -> SyncResource:
    return SyncResource("returns_sync_cm")


def returns_async_cm() -> AsyncResource:
    return AsyncResource("returns_async_cm")


def labelled(label: str) -> str:
    EVENTS.append(f"open {label}")
    return label


def returns_awaitable() -> Any:
    async def later() -> str:
        EVENTS.append("open returns_awaitable")
        return "returns_awaitable"

    return later()


class AsyncCallable:
    """An object whose ``__call__`` is a coroutine function."""

    async def __call__(self) -> str:
        EVENTS.append("open async_callable")
        return "async_callable"


PROVIDERS = {
    "plain": (plain, "plain", ["open plain"]),
    "coroutine": (coroutine, "coroutine", ["open coroutine"]),
    "sync_gen": (sync_gen, "sync_gen", ["open sync_gen", "run", "close sync_gen"]),
    "async_gen": (async_gen, "async_gen", ["open async_gen", "run", "close async_gen"]),
    "sync_cm": (sync_cm, "sync_cm", ["open sync_cm", "run", "close sync_cm"]),
    "async_cm": (async_cm, "async_cm", ["open async_cm", "run", "close async_cm"]),
    "returns_sync_cm": (returns_sync_cm, "returns_sync_cm", ["open returns_sync_cm", "run", "close returns_sync_cm"]),
    "returns_async_cm": (returns_async_cm, "returns_async_cm", ["async", "open returns_async_cm", "run", "close returns_async_cm"]),
    "partial": (functools.partial(labelled, "partial"), "partial", ["open partial"]),
    "returns_awaitable": (returns_awaitable, "returns_awaitable", ["open returns_awaitable"]),
    "async_callable": (AsyncCallable(), "async_callable", ["open async_callable"]),
}


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
async def test_each_provider_kind_gives_its_value_and_is_closed_after_the_run(app: QueueTasks, kind: str) -> None:
    provider, value, events = PROVIDERS[kind]

    @app.task
    async def use(given: str = Depends(provider)) -> str:
        EVENTS.append("run")
        return given

    async with running_worker(app, concurrency=1):
        record = await use.add_task(timeout=10)
    assert record is not None and (record.status, record.returning) == ("success", value), record.traceback
    assert EVENTS == (events if "run" in events else [*events, "run"])


async def test_sync_providers_run_in_worker_threads_and_async_ones_on_the_loop(app: QueueTasks) -> None:
    @app.task
    async def use(a: str = Depends(plain), b: str = Depends(sync_gen), c: str = Depends(async_gen)) -> str:
        return a + b + c

    async with running_worker(app):
        record = await use.add_task(timeout=10)
    assert record is not None and record.status == "success"
    loop = threading.get_ident()
    assert THREADS["open async_gen"] == loop
    assert loop not in (THREADS["plain"], THREADS["open sync_gen"], THREADS["close sync_gen"])


# -- syntaxes and task kinds -----------------------------------------------------------------------


async def _default_async(x: int, value: str = Depends(sync_gen)) -> str:
    return f"{x}:{value}"


async def _annotated_async(x: int, value: Annotated[str, Depends(async_gen)]) -> str:
    return f"{x}:{value}"


def _annotated_sync(x: int, value: Annotated[str, Depends(sync_cm)]) -> str:
    return f"{x}:{value}"


def _default_sync_generator(x: int, value: str = Depends(async_cm)) -> Iterator[str]:
    yield f"{x}:{value}"


async def _annotated_async_generator(x: int, value: Annotated[str, Depends(plain, scope=ScopeEnum.WORKER)]) -> AsyncIterator[str]:
    yield f"{x}:{value}"


async def _echo(self: Any, x: int, value: Annotated[str, Depends(coroutine)]) -> str:
    return f"{self.task_name}:{x}:{value}"


@pytest.mark.parametrize(("func", "options", "expected"), [
    (_default_async, {}, "1:sync_gen"),
    (_annotated_async, {}, "1:async_gen"),
    (_annotated_sync, {}, "1:sync_cm"),
    (_default_sync_generator, {}, ["1:async_cm"]),
    (_annotated_async_generator, {}, ["1:plain"]),
    (_echo, {"echo": True}, "_echo:1:coroutine"),
], ids=["default-async", "annotated-async", "annotated-sync", "default-sync-generator", "annotated-async-generator", "echo"])
async def test_both_syntaxes_fill_async_sync_generator_and_echo_tasks(app: QueueTasks, func: Any, options: dict[str, Any], expected: Any) -> None:
    """This module uses ``from __future__ import annotations``: every Annotated here is a string."""
    assert isinstance(func.__annotations__["value"], str)
    handle = app.task(**options)(func)
    async with running_worker(app):
        record = await handle.add_task(1, timeout=10)
    assert record is not None and (record.status, record.returning) == ("success", expected), record.traceback
    opened = [e for e in EVENTS if e.startswith("open")]
    assert len(opened) == 1 and EVENTS.count(opened[0].replace("open", "close")) <= 1


async def test_an_argument_the_caller_gives_wins_over_the_depends(app: QueueTasks) -> None:
    @app.task
    async def use(x: int, value: Annotated[str, Depends(sync_gen)], other: str = Depends(plain)) -> str:
        return f"{x}:{value}:{other}"

    async with running_worker(app):
        positional = await use.add_task(1, "mine", timeout=10)
        keyword = await use.add_task(2, value="kw", other="also mine", timeout=10)
        mixed = await use.add_task(3, "pos", timeout=10)
    assert positional is not None and positional.returning == "1:mine:plain"
    assert keyword is not None and keyword.returning == "2:kw:also mine"
    assert mixed is not None and mixed.returning == "3:pos:plain"
    assert EVENTS == ["open plain", "open plain"]  # sync_gen never ran: the caller gave its value


async def test_one_provider_used_twice_in_a_task_gives_one_value_per_run(app: QueueTasks) -> None:
    @app.task
    async def use(a: str = Depends(sync_gen), b: str = Depends(sync_gen)) -> bool:
        return a == b

    async with running_worker(app):
        record = await use.add_task(timeout=10)
    assert record is not None and record.returning is True
    assert EVENTS == ["open sync_gen", "close sync_gen"]


# -- the task scope closes exactly once, whatever ends the run --------------------------------------


def transaction() -> Iterator[str]:
    EVENTS.append("begin")
    try:
        yield "tx"
    except BaseException as error:
        EVENTS.append(f"rollback {type(error).__name__}")
        raise
    EVENTS.append("commit")


async def _succeeds(tx: str = Depends(transaction)) -> str:
    return tx


async def _fails(tx: str = Depends(transaction)) -> None:
    raise KeyError("boom")


async def _cancels_with_ctx(self: Any, tx: str = Depends(transaction)) -> None:
    self.ctx.cancel("not today")


def _raises_task_cancel(tx: str = Depends(transaction)) -> None:
    raise TaskCancelError("not today")


async def _times_out(tx: str = Depends(transaction)) -> None:
    await anyio.sleep_forever()


@pytest.mark.parametrize(("func", "options", "status", "closing"), [
    (_succeeds, {}, "success", {"commit"}),
    (_fails, {}, "error", {"rollback KeyError"}),
    (_cancels_with_ctx, {"echo": True}, "cancel", {"rollback TaskCancelError"}),
    (_raises_task_cancel, {}, "cancel", {"rollback TaskCancelError"}),
    # The time limit cancels the run: a value closed inside the limit's scope sees the cancellation.
    (_times_out, {"max_time": 0.2}, "error", {"rollback TimeoutError", "rollback CancelledError"}),
], ids=["success", "error", "ctx.cancel", "TaskCancelError", "max_time"])
async def test_the_task_scope_closes_once_on_every_outcome(app: QueueTasks, func: Any, options: dict[str, Any], status: str, closing: set[str]) -> None:
    handle = app.task(**options)(func)
    async with running_worker(app):
        record = await handle.add_task(timeout=10)
    assert record is not None and record.status == status
    assert EVENTS[0] == "begin" and EVENTS[1] in closing and len(EVENTS) == 2


async def test_the_task_scope_closes_when_the_worker_cancels_a_run_at_stop() -> None:
    """Past the grace period the run is cancelled: the async cleanup still awaits to its end."""
    app = QueueTasks(name="cancelled-run", broker_url="memory://", config=QueueConfig(graceful_stop_timeout=0.1))
    started = anyio.Event()

    @app.task
    async def hangs(value: str = Depends(async_gen)) -> None:
        started.set()
        await anyio.sleep_forever()

    async with running_worker(app):
        task = await hangs.add_task()
        await started.wait()
    assert EVENTS == ["open async_gen", "close async_gen"]
    assert (await app.get(task.uuid)).status == "new"  # handed back


async def test_a_provider_that_raises_fails_the_task_with_its_traceback(app: QueueTasks) -> None:
    def broken_provider() -> str:
        raise ConnectionError("database is down")

    @app.task
    async def use(db: str = Depends(broken_provider)) -> str:
        EVENTS.append("run")
        return db

    async with running_worker(app):
        record = await use.add_task(timeout=10)
    assert record is not None and record.status == "error"
    assert "in broken_provider" in record.traceback and "ConnectionError: database is down" in record.traceback
    assert EVENTS == []


# -- the long scopes ------------------------------------------------------------------------------


CREATED: list[int] = []


async def shared_pool() -> AsyncIterator[int]:
    CREATED.append(len(CREATED) + 1)
    number = CREATED[-1]
    if number == 1:
        await anyio.wait_all_tasks_blocked()  # every other consumer is idle or waiting for this value
    EVENTS.append(f"open pool {number}")
    try:
        yield number
    finally:
        EVENTS.append(f"close pool {number}")


async def test_a_worker_scope_value_is_made_once_for_concurrent_tasks_and_closed_at_stop(app: QueueTasks) -> None:
    CREATED.clear()

    @app.task
    async def use(i: int, pool: Annotated[int, Depends(shared_pool, scope="worker")]) -> int:
        return pool

    async with running_worker(app, concurrency=4):
        records = [await app.wait_result(t.uuid, 10) for t in await use.add_tasks([(i,) for i in range(12)])]
        assert EVENTS == ["open pool 1"]  # still open while the worker runs
    assert [r.returning for r in records] == [1] * 12
    assert EVENTS == ["open pool 1", "close pool 1"]
    async with running_worker(app, concurrency=2):  # a new worker makes a new value
        again = await use.add_task(0, timeout=10)
    assert again is not None and again.returning == 2
    assert EVENTS == ["open pool 1", "close pool 1", "open pool 2", "close pool 2"]


def _recorder(label: str) -> Any:
    def provider() -> Iterator[str]:
        EVENTS.append(f"open {label}")
        yield label
        EVENTS.append(f"close {label}")

    return provider


WORKER_SCOPED, BROKER_SCOPED = _recorder("worker"), _recorder("broker")
STORAGE_SCOPED, CONFIG_SCOPED = _recorder("storage"), _recorder("global_config")


async def _every_scope(
    task: str = Depends(_recorder("task")), worker: str = Depends(WORKER_SCOPED, scope="worker"),
    broker: str = Depends(BROKER_SCOPED, scope="broker"), storage: Annotated[str, Depends(STORAGE_SCOPED, scope=ScopeEnum.STORAGE)] = "",
    config: str = Depends(CONFIG_SCOPED, scope="global_config"),
) -> str:
    return " ".join((task, worker, broker, storage, config))


async def test_the_component_scopes_close_when_the_app_closes_after_the_worker_scope(app: QueueTasks) -> None:
    use = app.task(_every_scope)
    async with running_worker(app):
        first = await use.add_task(timeout=10)
        second = await use.add_task(timeout=10)
    assert first.returning == second.returning == "task worker broker storage global_config"
    opened = ["open worker", "open broker", "open storage", "open global_config"]
    assert EVENTS == [
        "open task", *opened, "close task", "open task", "close task",
        "close worker", "close global_config", "close storage", "close broker",
    ]


async def test_a_worker_without_serve_leaves_the_component_scopes_to_app_close(app: QueueTasks) -> None:
    use = app.task(_every_scope)
    worker = Worker(app, 1, grace_period=5)
    async with anyio.create_task_group() as group:
        group.start_soon(worker.serve)
        record = await use.add_task(timeout=10)
        worker.request_stop()
    assert record is not None and record.status == "success"
    assert EVENTS[-1] == "close worker" and "close broker" not in EVENTS
    await app.close()
    assert EVENTS[-3:] == ["close global_config", "close storage", "close broker"]
    assert len(EVENTS) == len(set(EVENTS)) == 10  # five opened, five closed, each once


def _cleanup_fails() -> Iterator[str]:
    yield "fails"
    raise RuntimeError("cleanup failed")


async def test_a_failing_cleanup_does_not_keep_the_other_values_open(app: QueueTasks) -> None:
    @app.task
    async def use(a: str = Depends(WORKER_SCOPED, scope="worker"), b: str = Depends(_cleanup_fails, scope="worker")) -> str:
        return a + b

    async with running_worker(app):
        record = await use.add_task(timeout=10)
    assert record is not None and record.status == "success"
    assert EVENTS == ["open worker", "close worker"]


# -- the sync app ---------------------------------------------------------------------------------


def test_a_sync_app_fills_sync_generator_and_async_tasks_and_closes_every_scope() -> None:
    app = SyncQueueTasks(name="sync-depends", broker_url="memory://")

    @app.task
    def annotated(x: int, tx: Annotated[str, Depends(transaction)], pool: str = Depends(WORKER_SCOPED, scope="worker")) -> str:
        return f"{x}:{tx}:{pool}"

    @app.task
    def pages(broker: str = Depends(BROKER_SCOPED, scope=ScopeEnum.BROKER)) -> Iterator[str]:
        yield broker

    @app.task
    async def awaited(value: Annotated[str, Depends(async_gen)]) -> str:
        return value

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    try:
        records = [annotated.add_task(i, timeout=10) for i in range(3)]
        generated = pages.add_task(timeout=10)
        from_loop = awaited.add_task(timeout=10)
        assert EVENTS.count("open worker") == 1 and "close worker" not in EVENTS
    finally:
        app.stop()
        worker.join(10)
    assert [r.returning for r in records] == ["0:tx:worker", "1:tx:worker", "2:tx:worker"]
    assert generated is not None and generated.returning == ["broker"]
    assert from_loop is not None and from_loop.returning == "async_gen"
    assert EVENTS.count("open async_gen") == EVENTS.count("close async_gen") == 1
    assert EVENTS.count("begin") == EVENTS.count("commit") == 3
    assert EVENTS[-2:] == ["close worker", "close broker"]


# -- errors ---------------------------------------------------------------------------------------


def test_the_public_names_and_scopes() -> None:
    assert PublicDepends is Depends is qtasks.Depends and PublicScopeEnum is ScopeEnum
    assert [s.value for s in ScopeEnum] == ["task", "worker", "broker", "storage", "global_config"]
    assert Depends(plain).scope is ScopeEnum.TASK and Depends(plain, scope="storage").scope is ScopeEnum.STORAGE
    assert repr(Depends(plain, scope="worker")) == "Depends(plain, scope='worker')"


def test_a_bad_scope_or_provider_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match=r"unknown Depends scope 'wrker' \(did you mean 'worker'.*\): use one of task, worker, broker, storage, global_config"):
        Depends(plain, scope="wrker")
    with pytest.raises(TypeError, match="Depends\\(...\\) needs a callable provider .*, got 3"):
        Depends(3)  # type: ignore[arg-type]


def _needs_url(url: str) -> str:
    return url


def _nested(inner: str = Depends(plain)) -> str:
    return inner


@pytest.mark.parametrize(("source", "problem"), [
    ("def job(*values: Annotated[str, Depends(plain)]): pass", "Depends(...) cannot fill *args or **kwargs"),
    ("def job(**values: Annotated[str, Depends(plain)]): pass", "Depends(...) cannot fill *args or **kwargs"),
    ("def job(db=Depends(plain), /): pass", "this parameter is positional-only; move it after the '/'"),
    ("def job(db=Depends(_needs_url)): pass", "provider _needs_url is called with no arguments, but missing a required argument: 'url'; "
                                               "bind them with functools.partial(_needs_url, ...)"),
    ("def job(db: Annotated[str, Depends(plain)] = Depends(plain)): pass", "it has 2 Depends(...) markers; keep one"),
    ("def job(db=Depends(_nested)): pass", "provider _nested has Depends parameters (inner), which are not resolved"),
], ids=["args", "kwargs", "positional-only", "provider-arguments", "two-markers", "nested"])
def test_a_depends_that_cannot_work_is_refused_naming_the_task_the_parameter_and_the_fix(app: QueueTasks, source: str, problem: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, globals(), namespace)
    with pytest.raises(ConfigurationError, match=r"^task 'job': parameter '(values|db)': ") as caught:
        app.task(namespace["job"])
    assert problem in str(caught.value)
    assert "job" not in app.tasks


def test_an_annotation_that_cannot_be_evaluated_is_refused_not_ignored(app: QueueTasks) -> None:
    def local_provider() -> str:
        return "local"

    async def job(db: Annotated[str, Depends(local_provider)]) -> str:
        return db

    with pytest.raises(ConfigurationError, match="parameter 'db': its annotation .* mentions Depends but cannot be evaluated "
                                                 r"\(NameError: name 'local_provider' is not defined\); define the provider at module level"):
        app.task(job)


@pytest.mark.parametrize("source", [
    "async def job(db=Depends(plain)): pass",
    "async def job(db: Annotated[str, Depends(plain)]): pass",
], ids=["default", "annotated"])
def test_a_depends_parameter_is_refused_while_the_plugin_is_disabled(source: str) -> None:
    app = QueueTasks(name="no-depends", broker_url="memory://", disable_plugins=["depends"])
    namespace: dict[str, Any] = {}
    exec(source, globals(), namespace)
    with pytest.raises(UnknownOptionError, match="task 'job': parameter 'db' uses Depends\\(...\\), which plugin 'depends' provides, and it is disabled"):
        app.task(namespace["job"])


# -- the example ----------------------------------------------------------------------------------


def test_the_depends_example_opens_the_pool_once_and_a_transaction_per_task(tmp_path: Path) -> None:
    assert run_example("depends", tmp_path) == [
        "pool: open",
        "transaction 1: begin",
        "transaction 1: commit ['ada']",
        "add_user('ada') -> success: 1",
        "transaction 2: begin",
        "transaction 2: rollback (ValueError: a user needs a name)",
        "add_user('') -> error: ValueError: a user needs a name",
        "transaction 3: begin",
        "transaction 3: commit ['grace']",
        "add_user('grace') -> success: 2",
        "pool: close after 2 statement(s)",
    ]
