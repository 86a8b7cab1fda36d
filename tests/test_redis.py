"""The Redis broker, storage and global config against real redis-servers (the shared one and private ones)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest
import redis.asyncio as redis_asyncio

from qtasks import BrokerUnavailable, ConfigurationError, QueueConfig
from qtasks.asyncio import QueueTasks
from qtasks.testing import running_worker

from redis_process import SHARED_URL, RedisProcess, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    """A raw client of the shared Redis (database 15); the test fails if Redis does not answer."""
    connection = redis_asyncio.Redis.from_url(SHARED_URL)
    try:
        await connection.ping()
    except Exception as error:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for these tests ({error}); .ci/run starts it")
    yield connection
    await connection.aclose()


@pytest.fixture
async def redis_app(client: Any) -> AsyncIterator[QueueTasks]:
    """A fresh app on the shared Redis with a unique name; its keys are deleted after the test."""
    app = QueueTasks(name=f"t-{uuid4().hex[:8]}", broker_url=SHARED_URL, config=QueueConfig(task_lease=2.0))
    yield app
    await app.close()
    keys = [key async for key in client.scan_iter(match=f"qtasks:{{{app.name}}}:*")]
    if keys:
        await client.delete(*keys)


async def _app_keys(client: Any, app: QueueTasks) -> list[str]:
    return sorted([key.decode() async for key in client.scan_iter(match=f"qtasks:{{{app.name}}}:*")])


async def test_a_redis_url_chooses_the_redis_components_coupled_in_one_step(redis_app: QueueTasks) -> None:
    await redis_app.start()
    assert type(redis_app.broker).__name__ == "RedisBroker"
    assert type(redis_app.storage).__name__ == "RedisStorage"
    assert type(redis_app.global_config.component).__name__ == "RedisGlobalConfig"
    assert redis_app.steps.coupled is redis_app.storage


async def test_the_environment_variable_chooses_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTASKS_BROKER_URL", SHARED_URL)
    app = QueueTasks(name=f"t-{uuid4().hex[:8]}")
    assert type(app.broker).__name__ == "RedisBroker"


async def test_acknowledged_tasks_leave_nothing_behind_but_expiring_records(redis_app: QueueTasks, client: Any) -> None:
    @redis_app.task
    async def double(x: int) -> int:
        return 2 * x

    async with running_worker(redis_app, concurrency=4):
        records = await redis_app.add_tasks("double", [(i,) for i in range(50)])
        results = [await redis_app.wait_result(r.uuid, 10) for r in records]
    assert [r.returning for r in results] == [2 * i for i in range(50)]
    prefix = f"qtasks:{{{redis_app.name}}}:"
    keys = await _app_keys(client, redis_app)
    leftovers = [k for k in keys if not k.startswith((prefix + "r:", prefix + "fin:"))]
    # Only the FIFO counter, the wake-up list and the (expiring) worker registry may remain.
    assert set(leftovers) <= {prefix + "seq", prefix + "wake", prefix + "workers", prefix + "alive"}
    for key in [k for k in keys if k.startswith(prefix + "r:")]:
        assert 0 < await client.pttl(key) <= 86_400_000
    finished_counters = [k for k in keys if k.startswith(prefix + "fin:")]  # throughput, per second
    assert finished_counters
    for key in finished_counters:
        assert 0 < await client.pttl(key) <= 300_000


async def test_every_key_of_an_app_shares_one_hash_tag(redis_app: QueueTasks, client: Any) -> None:
    @redis_app.task
    async def noop() -> None:
        return None

    async with running_worker(redis_app, concurrency=1):
        await noop.add_task(timeout=10)
        await noop.add_task(countdown=60)
    keys = await _app_keys(client, redis_app)
    assert len(keys) >= 5
    assert all(key.split("{", 1)[1].split("}", 1)[0] == redis_app.name for key in keys)


async def _calls(client: Any, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.fixture
async def private() -> AsyncIterator[tuple[QueueTasks, Any]]:
    """An app and a raw client on a private redis-server, so that command counts are the app's own."""
    server = RedisProcess(Path(__import__("tempfile").mkdtemp(prefix="qtasks-redis-")))
    server.start()
    app = QueueTasks(name="private", broker_url=server.url, config=QueueConfig(task_lease=30.0))
    connection = redis_asyncio.Redis.from_url(server.url)
    try:
        yield app, connection
    finally:
        await app.close()
        await connection.aclose()
        server.stop()


async def test_a_batch_is_one_round_trip(private: tuple[QueueTasks, Any]) -> None:
    redis_app, client = private
    await redis_app.add_tasks("anything", [(0,)])  # loads the script once
    before = await _calls(client, "evalsha")
    records = await redis_app.add_tasks("anything", [(i,) for i in range(100)])
    assert await _calls(client, "evalsha") - before == 1
    assert len(records) == 100 and await redis_app.broker.depth() == 101


async def test_a_waiter_is_woken_by_the_result_not_by_polling(private: tuple[QueueTasks, Any]) -> None:
    redis_app, client = private
    release = anyio.Event()

    @redis_app.task
    async def slow() -> str:
        await release.wait()
        return "done"

    async with running_worker(redis_app, concurrency=1):
        task = await slow.add_task()
        gets_before = await _calls(client, "get")
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: anyio.sleep(0.5))  # the task runs on for half a second
            result: list[Any] = []

            async def wait() -> None:
                result.append(await redis_app.wait_result(task.uuid, 10))

            group.start_soon(wait)
            await anyio.sleep(0.5)  # elapsed time is the behaviour: a poller would read every few ms
            release.set()
    assert result[0].status == "success" and result[0].returning == "done"
    assert await _calls(client, "get") - gets_before <= 3


async def test_an_idle_worker_blocks_instead_of_polling(private: tuple[QueueTasks, Any]) -> None:
    redis_app, client = private

    @redis_app.task
    async def noop() -> None:
        return None

    async with running_worker(redis_app, concurrency=4):
        await noop.add_task(timeout=10)  # the worker is up and its scripts are loaded
        before = await _calls(client, "evalsha"), await _calls(client, "blpop")
        await anyio.sleep(1.0)  # elapsed idle time is the behaviour under test
        after = await _calls(client, "evalsha"), await _calls(client, "blpop")
    # One claim came back empty, then the worker blocks on the wake-up list for CLAIM_WAIT (5 s).
    assert after[0] - before[0] <= 1 and after[1] - before[1] <= 1


async def test_an_unreachable_server_raises_broker_unavailable_in_bounded_time_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    app = QueueTasks(name="gone", broker_url=url, config=QueueConfig(broker_timeout=0.5))
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(BrokerUnavailable) as raised:
        await app.add_task("anything")
    assert time.monotonic() - started < 5
    assert "did not answer" in str(raised.value) and "***" in str(raised.value)
    assert "hunter2secret" not in str(raised.value)
    assert all("hunter2secret" not in record.getMessage() for record in caplog.records)
    assert sum("unreachable" in record.getMessage() for record in caplog.records) == 1  # once per outage


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://localhost/notanumber", "database 'notanumber' is not a number"),
        ("redis://localhost:63a9/0", "port that is not a number"),
        ("redis:///0", "names no host"),
        ("unix://", "names no socket path"),
        ("redis://:pw@localhost:6379/0?socket_timeout=x", "not a valid Redis URL"),
    ],
)
def test_a_malformed_redis_url_names_the_problem_and_the_fix(url: str, problem: str) -> None:
    app = QueueTasks(name="bad", broker_url=url)
    with pytest.raises(ConfigurationError, match="redis://") as raised:
        app.broker
    assert problem in str(raised.value) and ":pw@" not in str(raised.value)


def test_an_app_name_with_braces_is_refused_for_redis() -> None:
    app = QueueTasks(name="a{b}", broker_url=SHARED_URL)
    with pytest.raises(ConfigurationError, match="hash tag"):
        app.broker


async def test_unix_socket_urls_are_served(tmp_path: Path) -> None:
    socket_path = str(tmp_path / "redis.sock")
    server = RedisProcess(tmp_path, unixsocket=socket_path)
    server.start()
    try:
        app = QueueTasks(name="unix", broker_url=f"unix://{socket_path}?db=0")

        @app.task
        async def hello(name: str) -> str:
            return f"hello {name}"

        async with running_worker(app, concurrency=1):
            result = await hello.add_task("unix", timeout=10)
        await app.close()
        assert result.status == "success" and result.returning == "hello unix"
    finally:
        server.stop()


async def test_global_config_is_shared_between_app_objects(redis_app: QueueTasks) -> None:
    await redis_app.global_config.set("limits", "rate", {"per_second": 5})
    await redis_app.global_config.set("limits-b", "rate", 7)
    other = QueueTasks(name=redis_app.name, broker_url=SHARED_URL)
    try:
        assert await other.global_config.get("rate", "limits") == {"per_second": 5}
        assert await other.global_config.get_all("limits") == {"rate": {"per_second": 5}}
        assert await other.global_config.get_match("limits*") == {"limits": {"rate": {"per_second": 5}}, "limits-b": {"rate": 7}}
        assert await other.global_config.get("missing", "limits") is None
    finally:
        await other.close()


async def test_restarting_redis_with_a_thousand_tasks_in_flight_loses_none(tmp_path: Path) -> None:
    """The fault test: 1,000 tasks queued, the server SIGKILLed and restarted mid-run (its
    append-only file fsyncs every write); every task still ends ``success``."""
    server = RedisProcess(tmp_path)
    server.start()
    app = QueueTasks(name="fault", broker_url=server.url, config=QueueConfig(task_lease=1.0, broker_timeout=30.0))
    done = 0
    restarted = anyio.Event()

    @app.task
    async def work(i: int) -> int:
        nonlocal done
        done += 1
        await anyio.sleep(0.001)
        return i

    try:
        records = await app.add_tasks("work", [(i,) for i in range(1000)])
        async with running_worker(app, concurrency=10):
            with anyio.fail_after(30):
                while done < 200:
                    await anyio.sleep(0.005)  # waits for the worker to be well into the batch
            server.kill()
            server.start()
            restarted.set()
            with anyio.fail_after(90):
                results = [await app.wait_result(r.uuid, 90) for r in records]
        assert [r.status if r else None for r in results] == ["success"] * 1000
        assert sorted(r.returning for r in results) == list(range(1000))
    finally:
        await app.close()
        server.stop()


async def test_a_worker_started_before_redis_waits_for_it_and_logs_the_outage_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisProcess(tmp_path)  # not started yet: the port is free
    app = QueueTasks(name="early", broker_url=server.url, config=QueueConfig(broker_timeout=0.2, task_lease=1.0))

    @app.task
    async def ping() -> str:
        return "pong"

    try:
        with caplog.at_level(logging.INFO):
            async with running_worker(app, concurrency=2):
                with anyio.fail_after(10):
                    while not any("claiming from the broker failed" in r.getMessage() for r in caplog.records):
                        await anyio.sleep(0.01)  # waits for the worker's first failed claim
                server.start()
                result = await ping.add_task(timeout=15)
        assert result.status == "success" and result.returning == "pong"
        messages = [r.getMessage() for r in caplog.records]
        assert sum("claiming from the broker failed" in m for m in messages) == 1
        assert any("claiming works again" in m for m in messages)
    finally:
        await app.close()
        server.stop()


async def test_a_sync_producer_gets_pushed_results_from_another_app_object(redis_app: QueueTasks) -> None:
    from qtasks import QueueTasks as SyncQueueTasks

    @redis_app.task
    async def square(x: int) -> int:
        return x * x

    producer = SyncQueueTasks(name=redis_app.name, broker_url=SHARED_URL)
    try:
        async with running_worker(redis_app, concurrency=2):
            result = await anyio.to_thread.run_sync(lambda: producer.add_task("square", 7, timeout=10))
            batch = await anyio.to_thread.run_sync(lambda: producer.add_tasks("square", [(1,), (2,)]))
            finals = [await redis_app.wait_result(t.uuid, 10) for t in batch]
        assert result.status == "success" and result.returning == 49
        assert [t.returning for t in finals] == [1, 4]
    finally:
        await anyio.to_thread.run_sync(producer.close)


async def test_timeouts_in_the_url_do_not_break_the_blocking_claim(caplog: pytest.LogCaptureFixture) -> None:
    app = QueueTasks(name=f"t-{uuid4().hex[:8]}", broker_url=SHARED_URL + "?socket_timeout=0.05")

    @app.task
    async def ok() -> str:
        return "ok"

    try:
        with caplog.at_level(logging.INFO):
            async with running_worker(app, concurrency=1):
                await anyio.sleep(0.3)  # idle longer than the URL's socket timeout: the claim blocks
                result = await ok.add_task(timeout=10)
        assert result.returning == "ok"
        assert not [r for r in caplog.records if "unreachable" in r.getMessage()]
    finally:
        await app.flush_all()
        await app.close()


def test_an_empty_app_name_is_refused_for_redis() -> None:
    with pytest.raises(ConfigurationError, match="cannot be empty"):
        QueueTasks(name="", broker_url=SHARED_URL).broker


async def test_a_result_wait_survives_a_redis_restart(tmp_path: Path) -> None:
    """The result reader, idle after a first wait, sits on a pub/sub connection that the server's
    restart killed without an error; a wait for a task that ends after the restart still gets
    its record (the dead connection is noticed and replaced)."""
    server = RedisProcess(tmp_path)
    server.start()
    app = QueueTasks(name="rewait", broker_url=server.url, config=QueueConfig(task_lease=5.0, broker_timeout=30.0))
    release = anyio.Event()

    @app.task
    async def slow(wait: bool) -> str:
        if wait:
            await release.wait()
        return "done"

    try:
        async with running_worker(app, concurrency=1):
            first = await slow.add_task(False)
            assert (await app.wait_result(first.uuid, 10)).status == "success"
            server.kill()
            server.start()
            task = await slow.add_task(True)
            async with anyio.create_task_group() as group:
                got: list[Any] = []

                async def wait() -> None:
                    got.append(await app.wait_result(task.uuid, 20))

                group.start_soon(wait)
                with anyio.fail_after(10):
                    while not app.storage.waiter._channels:  # the waiter has subscribed
                        await anyio.sleep(0.005)
                release.set()
        assert got[0] is not None and got[0].status == "success" and got[0].returning == "done"
    finally:
        await app.close()
        server.stop()
