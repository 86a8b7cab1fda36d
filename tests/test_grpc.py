"""The gRPC plugin, through a real gRPC client: AddTask, GetTask, errors, priority, health, reflection."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from qtasks import QueueTasks as SyncQueueTasks
from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.contrib.grpc import AsyncgRPCPlugin, SyncgRPCPlugin, qtasks_pb2, qtasks_pb2_grpc
from qtasks.errors import ConfigurationError
from qtasks.testing import running_worker
from subprocesses import ROOT, child_env, worker_process

pytestmark = pytest.mark.anyio
WAIT = 30.0
# A client that finds a server which is still starting within ~50 ms, not gRPC's default 1 s.
CLIENT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 200)]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(name: str, *args: Any, timeout: float = 0.0, priority: int = 0, **kwargs: Any) -> qtasks_pb2.AddTaskRequest:
    """An AddTask request for ``name(*args, **kwargs)``."""
    return qtasks_pb2.AddTaskRequest(
        name=name, args_json=json.dumps(args) if args else "", kwargs_json=json.dumps(kwargs) if kwargs else "", timeout=timeout, priority=priority,
    )


class Client:
    """A ``grpc.aio`` client of QTasksService; every call waits for the server to be ready."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.stub = qtasks_pb2_grpc.QTasksServiceStub(channel)

    async def add(self, name: str, *args: Any, **options: Any) -> qtasks_pb2.AddTaskResponse:
        return await self.stub.AddTask(request(name, *args, **options), wait_for_ready=True, timeout=WAIT)

    async def get(self, uuid: str, include_result: bool = False) -> qtasks_pb2.GetTaskResponse:
        return await self.stub.GetTask(qtasks_pb2.GetTaskRequest(uuid=uuid, include_result=include_result), wait_for_ready=True, timeout=WAIT)


@asynccontextmanager
async def client(address: str) -> AsyncIterator[Client]:
    async with grpc.aio.insecure_channel(address, options=CLIENT_OPTIONS) as channel:
        yield Client(channel)


@asynccontextmanager
async def serving(plugin: AsyncgRPCPlugin) -> AsyncIterator[Client]:
    """Serve ``plugin`` without a worker and connect a client to it."""
    await plugin.start()
    try:
        async with client(plugin.address) as connected:
            yield connected
    finally:
        await plugin.stop()


def make_app(name: str = "grpc") -> tuple[QueueTasks, AsyncgRPCPlugin]:
    app = QueueTasks(name=name, broker_url="memory://")
    plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=0)
    app.add_plugin(plugin)
    return app, plugin


async def test_a_worker_serves_grpc_and_add_task_with_a_timeout_returns_the_result() -> None:
    """Registered with add_plugin, the plugin serves while the worker does: async, sync and
    generator tasks; keyword arguments named like add_task's options reach the task; a result
    JSON cannot express is sent as its str()."""
    app = QueueTasks(name="grpc-worker", broker_url="memory://")
    plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=free_port())
    app.add_plugin(plugin, trigger_names=["-"])  # the original's registration

    @app.task
    async def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def describe(name: str, timeout: float, priority: str) -> dict[str, Any]:
        return {"name": name, "timeout": timeout, "priority": priority}

    @app.task
    async def countdown(n: int) -> Any:
        for i in range(n, 0, -1):
            yield i

    @app.task
    def stamp() -> datetime:
        return datetime(2030, 1, 2, tzinfo=timezone.utc)

    @app.task
    def pairs() -> dict[tuple[int, int], str]:
        return {(1, 2): "pair"}

    async with running_worker(app), client(plugin.address) as grpc_client:
        added = await grpc_client.add("add", 2, 3, timeout=WAIT)
        described = await grpc_client.stub.AddTask(
            qtasks_pb2.AddTaskRequest(name="describe", args_json='["job"]', kwargs_json='{"timeout": 1.5, "priority": "high"}', timeout=WAIT),
            wait_for_ready=True, timeout=WAIT,
        )
        counted = await grpc_client.add("countdown", 3, timeout=WAIT)
        stamped = await grpc_client.add("stamp", timeout=WAIT)
        paired = await grpc_client.add("pairs", timeout=WAIT)
        assert plugin.server.running
    assert not plugin.server.running  # it stopped with the worker
    assert (added.ok, added.status, json.loads(added.result_json), added.error) == (True, "success", 5, "")
    assert (await app.get(added.uuid)).returning == 5
    assert json.loads(described.result_json) == {"name": "job", "timeout": 1.5, "priority": "high"}
    assert json.loads(counted.result_json) == [3, 2, 1]
    assert json.loads(stamped.result_json) == "2030-01-02 00:00:00+00:00"
    assert json.loads(paired.result_json) == "{(1, 2): 'pair'}"  # JSON has no tuple keys: the whole result as str()


async def test_add_task_without_a_timeout_returns_the_uuid_at_once_and_get_task_follows_it() -> None:
    """No worker needed to enqueue; GetTask shows the status, and the result or traceback only
    with include_result. A worker started later leaves the already-running server alone."""
    app, plugin = make_app()

    @app.task
    async def double(x: int) -> int:
        return 2 * x

    @app.task
    async def broken() -> None:
        raise ValueError("no luck")

    async with serving(plugin) as grpc_client:
        queued = await grpc_client.add("double", 21)
        failing = await grpc_client.add("broken")
        assert (queued.ok, queued.status, queued.result_json) == (True, "new", "")
        before = await grpc_client.get(queued.uuid, include_result=True)
        assert (before.ok, before.status, before.result_json, before.traceback) == (True, "new", "", "")
        async with running_worker(app):
            await app.wait_result(queued.uuid, WAIT)
            await app.wait_result(failing.uuid, WAIT)
        assert plugin.server.running  # started by start(), so the worker did not stop it
        done = await grpc_client.get(queued.uuid, include_result=True)
        bare = await grpc_client.get(queued.uuid)
        failed = await grpc_client.get(failing.uuid, include_result=True)
    assert (done.ok, done.status, json.loads(done.result_json)) == (True, "success", 42)
    assert (bare.ok, bare.status, bare.result_json, bare.traceback) == (True, "success", "", "")
    assert (failed.ok, failed.status, failed.result_json) == (True, "error", "")
    assert failed.traceback.strip().endswith("ValueError: no luck")


async def test_a_task_that_fails_is_cancelled_or_runs_past_the_timeout_is_reported_with_its_uuid() -> None:
    app, plugin = make_app()
    release = anyio.Event()

    @app.task
    async def broken() -> None:
        raise KeyError("missing")

    @app.task
    async def gated() -> str:
        await release.wait()
        return "released"

    @app.task(echo=True)
    async def quitter(self: Any) -> None:
        self.ctx.cancel("nothing to do")

    async with running_worker(app), serving(plugin) as grpc_client:
        failed = await grpc_client.add("broken", timeout=WAIT)
        cancelled = await grpc_client.add("quitter", timeout=WAIT)
        late = await grpc_client.add("gated", timeout=0.2)
        release.set()
        record = await app.wait_result(late.uuid, WAIT)
    assert (failed.ok, failed.status, failed.result_json) == (False, "error", "")
    assert failed.uuid and failed.error == "task 'broken' ended error: KeyError: 'missing'"
    assert (cancelled.ok, cancelled.status, cancelled.error) == (False, "cancel", "task 'quitter' ended cancel: nothing to do")
    assert (late.ok, late.status) == (False, "process")
    assert late.error == "task 'gated' did not end within 0.2s (status process); it goes on: call GetTask with its uuid later"
    assert record.returning == "released"  # the task went on after the caller stopped waiting


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": "resize"}, "unknown task 'resize': give the name of a task registered on the server's app; registered tasks: add, echo"),
        ({"name": ""}, "name is empty: give the name of a task registered on the server's app; registered tasks: add, echo"),
        ({"name": "add", "args_json": "[1, 2"}, "args_json is not valid JSON (Expecting ',' delimiter: line 1 column 6 (char 5)): send a JSON array, e.g. [1, \"two\"]"),
        ({"name": "add", "args_json": '{"x": 1}'}, 'args_json must be a JSON array, got a JSON object: {"x": 1}'),
        ({"name": "add", "kwargs_json": "[1]"}, "kwargs_json must be a JSON object, got a JSON array: [1]"),
        ({"name": "add", "kwargs_json": "nope"}, "kwargs_json is not valid JSON (Expecting value: line 1 column 1 (char 0)): send a JSON object, e.g. {\"name\": \"value\"}"),
        ({"name": "add", "kwargs_json": '{"self": 1}'}, "kwargs_json: the key 'self' cannot be passed as a keyword argument; pass it in args_json"),
        ({"name": "add", "timeout": -1.0}, "timeout must be a finite number of seconds >= 0 (0: do not wait), got -1.0"),
        ({"name": "add", "timeout": math.nan}, "timeout must be a finite number of seconds >= 0 (0: do not wait), got nan"),
        ({"name": "add", "timeout": math.inf}, "timeout must be a finite number of seconds >= 0 (0: do not wait), got inf"),
    ],
)
async def test_a_bad_add_task_gets_ok_false_naming_the_field_and_enqueues_nothing(fields: dict[str, Any], error: str) -> None:
    app, plugin = make_app()

    @app.task(name="echo")
    async def echo_back(value: Any) -> Any:
        return value

    @app.task
    async def add(x: int, y: int) -> int:
        return x + y

    async with serving(plugin) as grpc_client:
        reply = await grpc_client.stub.AddTask(qtasks_pb2.AddTaskRequest(**fields), wait_for_ready=True, timeout=WAIT)
    assert (reply.ok, reply.uuid, reply.status, reply.error) == (False, "", "", error)
    assert await app.storage.status_counts() == {}


async def test_a_call_a_plugin_refuses_gets_ok_false_with_its_error() -> None:
    class NoNegatives:
        @hookimpl
        async def qtasks_task_prepare(self, app: Any, call: Any) -> None:
            if any(isinstance(arg, int) and arg < 0 for arg in call.args):
                raise ValueError("negative numbers are refused")

    app, plugin = make_app()
    app.add_plugin(NoNegatives())

    @app.task
    async def root(x: int) -> float:
        return x ** 0.5

    async with serving(plugin) as grpc_client:
        refused = await grpc_client.add("root", -4)
        accepted = await grpc_client.add("root", 4)
    assert (refused.ok, refused.uuid, refused.error) == (False, "", "task 'root' was not enqueued: ValueError: negative numbers are refused")
    assert accepted.ok and (await app.get(accepted.uuid)).args == (4,)


async def test_get_task_of_a_bad_or_unknown_uuid_gets_ok_false() -> None:
    app, plugin = make_app()
    async with serving(plugin) as grpc_client:
        bad = await grpc_client.get("not-a-uuid")
        unknown = await grpc_client.get("6f1c2b4e-0000-4000-8000-000000000000", include_result=True)
    assert (bad.ok, bad.status, bad.error) == (False, "", "uuid 'not-a-uuid' is not a task uuid: pass the uuid AddTask returned")
    assert (unknown.ok, unknown.status) == (False, "")
    assert unknown.error == ("no task with uuid 6f1c2b4e-0000-4000-8000-000000000000: it was not enqueued on this app, "
                             "or its record expired (result_ttl)")


async def test_priority_is_honoured_and_zero_means_the_tasks_own() -> None:
    """Tasks enqueued over gRPC before the worker starts run lowest priority first; priority 0
    ("not given") leaves the task's own priority."""
    app, plugin = make_app()
    ran: list[str] = []

    @app.task(priority=4)
    async def record(label: str) -> None:
        ran.append(label)

    async with serving(plugin) as grpc_client:
        replies = [await grpc_client.add("record", label, priority=priority) for label, priority in (("p5", 5), ("own", 0), ("p1", 1), ("p3", 3))]
    assert all(reply.ok for reply in replies)
    assert [(await app.get(reply.uuid)).priority for reply in replies] == [5, 4, 1, 3]
    async with running_worker(app, concurrency=1):
        for reply in replies:
            await app.wait_result(reply.uuid, WAIT)
    assert ran == ["p1", "p3", "own", "p5"]


async def test_the_server_reports_its_health_and_lists_its_services_by_reflection() -> None:
    app, plugin = make_app()
    await plugin.start()
    try:
        async with grpc.aio.insecure_channel(plugin.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            overall = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=WAIT)
            service = await health.Check(health_pb2.HealthCheckRequest(service="qtasks.v1.QTasksService"), timeout=WAIT)
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=WAIT)
            listed = [answer async for answer in answers]
    finally:
        await plugin.stop()
    assert overall.status == service.status == health_pb2.HealthCheckResponse.SERVING
    names = {entry.name for entry in listed[0].list_services_response.service}
    assert {"qtasks.v1.QTasksService", "grpc.health.v1.Health"} <= names


async def test_max_concurrent_rpcs_refuses_the_rpcs_beyond_it() -> None:
    app = QueueTasks(name="grpc-limit", broker_url="memory://")
    plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=0, max_concurrent_rpcs=1)
    started, release = anyio.Event(), anyio.Event()

    @app.task
    async def gated() -> str:
        started.set()
        await release.wait()
        return "done"

    async with running_worker(app), serving(plugin) as grpc_client:
        async with anyio.create_task_group() as group:
            replies: list[Any] = []

            async def waiting() -> None:
                replies.append(await grpc_client.add("gated", timeout=WAIT))

            group.start_soon(waiting)
            with anyio.fail_after(WAIT):
                await started.wait()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await grpc_client.get("6f1c2b4e-0000-4000-8000-000000000000")
            release.set()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert replies[0].ok and json.loads(replies[0].result_json) == "done"


async def test_the_constructor_and_start_refuse_what_cannot_work() -> None:
    app = QueueTasks(name="grpc-checks", broker_url="memory://")
    with pytest.raises(ConfigurationError, match=r"gRPC port must be a whole number from 0 to 65535 \(0 picks a free port\), got 70000"):
        AsyncgRPCPlugin(app, port=70000)
    with pytest.raises(ConfigurationError, match=r"max_concurrent_rpcs must be a whole number >= 1, or None for no limit; got 0"):
        AsyncgRPCPlugin(app, max_concurrent_rpcs=0)
    with pytest.raises(ConfigurationError, match=r"grpc_options: each option is a \(name, value\) pair"):
        AsyncgRPCPlugin(app, grpc_options=["grpc.so_reuseport"])  # type: ignore[list-item]
    with socket.socket() as taken:  # a listener without SO_REUSEPORT: gRPC cannot share its port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(ConfigurationError, match=r"gRPC server of app 'grpc-checks' cannot listen on 127\.0\.0\.1:\d+ .*choose another host= or port="):
            await plugin.start()
    assert not plugin.server.running


async def test_the_password_of_the_broker_url_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = QueueTasks(name="grpc-secret", broker_url="redis://:s3cret-pass@127.0.0.1:6379/0")
    plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=0)
    with caplog.at_level(logging.INFO, logger="qtasks.grpc"):
        await plugin.start()
        await plugin.stop()
    assert "serves qtasks.v1.QTasksService on 127.0.0.1:" in caplog.text
    assert "s3cret-pass" not in caplog.text and "redis://:***@127.0.0.1:6379/0" in caplog.text


async def test_serve_runs_until_stop_and_keeps_the_components_open() -> None:
    app = QueueTasks(name="grpc-serve", broker_url="memory://")
    plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=free_port())

    @app.task
    async def ping() -> str:
        return "pong"

    async with anyio.create_task_group() as group:
        group.start_soon(plugin.serve)
        async with client(plugin.address) as grpc_client:
            queued = await grpc_client.add("ping")
        await plugin.stop()  # serve() returns: the task group can end
    assert not plugin.server.running and app.components.started
    assert (await app.get(queued.uuid)).status == "new"


def test_each_plugin_refuses_the_other_kind_of_app() -> None:
    async_app = QueueTasks(name="grpc-async-kind", broker_url="memory://")
    sync_app = SyncQueueTasks(name="grpc-sync-kind", broker_url="memory://")
    with pytest.raises(ConfigurationError, match=r"^AsyncgRPCPlugin serves an async app \(qtasks.asyncio.QueueTasks\); for <QueueTasks 'grpc-sync-kind' sync> use SyncgRPCPlugin$"):
        AsyncgRPCPlugin(sync_app)
    with pytest.raises(ConfigurationError, match=r"^SyncgRPCPlugin serves a sync app \(qtasks.QueueTasks\); for .* use AsyncgRPCPlugin$"):
        SyncgRPCPlugin(async_app)


def test_the_plugins_import_lazily_from_qtasks_plugins() -> None:
    import qtasks.plugins

    assert qtasks.plugins.AsyncgRPCPlugin is AsyncgRPCPlugin and qtasks.plugins.SyncgRPCPlugin is SyncgRPCPlugin
    with pytest.raises(AttributeError, match="has no attribute 'gRPCPlugin'"):
        qtasks.plugins.gRPCPlugin  # noqa: B018 - the lookup is the test


@contextmanager
def sync_client(address: str) -> Iterator[qtasks_pb2_grpc.QTasksServiceStub]:
    with grpc.insecure_channel(address, options=CLIENT_OPTIONS) as channel:
        yield qtasks_pb2_grpc.QTasksServiceStub(channel)


def test_a_sync_app_serves_grpc_beside_its_worker() -> None:
    """SyncgRPCPlugin registered on a sync app: its worker (on the app's loop thread) serves
    gRPC; sync, async and generator tasks; a blocking client."""
    app = SyncQueueTasks(name="grpc-sync", broker_url="memory://")
    plugin = SyncgRPCPlugin(app, host="127.0.0.1", port=free_port())
    app.add_plugin(plugin)

    @app.task
    def shout(word: str) -> str:
        return word.upper()

    @app.task
    async def halve(x: float) -> float:
        return x / 2

    @app.task
    def letters(word: str) -> Any:
        yield from word

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    try:
        with sync_client(plugin.address) as stub:
            shouted = stub.AddTask(request("shout", "hi", timeout=WAIT), wait_for_ready=True, timeout=WAIT)
            halved = stub.AddTask(request("halve", 5, timeout=WAIT), wait_for_ready=True, timeout=WAIT)
            spelled = stub.AddTask(request("letters", "abc", timeout=WAIT), wait_for_ready=True, timeout=WAIT)
            record = stub.GetTask(qtasks_pb2.GetTaskRequest(uuid=shouted.uuid, include_result=True), timeout=WAIT)
    finally:
        app.stop()
        worker.join(WAIT)
    assert [json.loads(reply.result_json) for reply in (shouted, halved, spelled)] == ["HI", 2.5, ["a", "b", "c"]]
    assert (record.status, record.result_json) == ("success", '"HI"')
    assert not plugin.server.running


def test_a_sync_plugin_starts_and_stops_without_a_worker() -> None:
    app = SyncQueueTasks(name="grpc-sync-alone", broker_url="memory://")
    plugin = SyncgRPCPlugin(app, host="127.0.0.1", port=0)

    @app.task
    def shout(word: str) -> str:
        return word.upper()

    plugin.start()
    try:
        with sync_client(plugin.address) as stub:
            queued = stub.AddTask(request("shout", "later"), wait_for_ready=True, timeout=WAIT)
            seen = stub.GetTask(qtasks_pb2.GetTaskRequest(uuid=queued.uuid), timeout=WAIT)
    finally:
        plugin.stop()
        app.close()
    assert (queued.ok, seen.ok, seen.status) == (True, True, "new")
    assert not plugin.server.running


WORKER_SOURCE = '''
import os

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="grpc-sqlite")


@app.task
def whoami(label: str) -> dict:
    return {"label": label, "pid": os.getpid()}
'''


@pytest.mark.slow
async def test_a_worker_process_on_sqlite_runs_what_the_grpc_server_enqueued(tmp_path: Path) -> None:
    """The gRPC server in this process only enqueues (default SQLite URL in tmp_path); a
    ``qtasks run`` process runs the task and AddTask's wait sees its result."""
    app = QueueTasks(name="grpc-sqlite")  # the default URL: qtasks.sqlite3 in the test's directory
    plugin = AsyncgRPCPlugin(app, host="127.0.0.1", port=0)

    @app.task
    def whoami(label: str) -> dict[str, Any]:
        raise AssertionError("the worker process runs it, not the gRPC server's process")

    with worker_process(tmp_path, WORKER_SOURCE):
        async with serving(plugin) as grpc_client:
            reply = await grpc_client.add("whoami", "from gRPC", timeout=60)
    await app.close()
    assert reply.ok, reply.error
    result = json.loads(reply.result_json)
    assert result["label"] == "from gRPC" and result["pid"] != os.getpid()


@pytest.mark.slow
def test_the_example_server_and_client(tmp_path: Path) -> None:
    port = str(free_port())
    server = subprocess.Popen([sys.executable, str(ROOT / "examples" / "grpc" / "server.py"), port], cwd=tmp_path, env=child_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        result = subprocess.run([sys.executable, str(ROOT / "examples" / "grpc" / "client.py"), port], cwd=tmp_path, env=child_env(),
                                capture_output=True, text=True, timeout=120)
    finally:
        server.send_signal(signal.SIGTERM)
        _, server_log = server.communicate(timeout=30)
    assert result.returncode == 0, result.stderr + server_log
    assert result.stdout.splitlines() == [
        "health: SERVING",
        "add(2, 3) -> success 5",
        'slugify -> success "hello-grpc-world"',
        "queued: new | uuid returned: True",
        "GetTask(add's uuid) -> success 5",
        "AddTask(resize) -> ok=False: unknown task 'resize': give the name of a task registered on the server's app; registered tasks: add, slugify",
        'AddTask(add) -> ok=False: args_json must be a JSON array, got a JSON object: {"x": 1}',
    ]
    assert server.returncode == 0, server_log
    assert f"serves qtasks.v1.QTasksService on 127.0.0.1:{port}" in server_log
    assert (tmp_path / "qtasks.sqlite3").exists()
