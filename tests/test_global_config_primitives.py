"""Global config primitives: delete, set_many and compare_and_swap on memory, Redis and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest
import redis.asyncio as redis_asyncio

from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.errors import SerializationError
from qtasks.kernel.model import ConfigEntry

from redis_process import SHARED_URL

pytestmark = pytest.mark.anyio

BACKENDS = ["memory", "redis", "sqlite"]


@pytest.fixture(params=BACKENDS)
async def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[..., QueueTasks]]:
    """``make_app(name=None)``: a started async app on the backend under test; the same name gives
    a second app object on the same data (a separate connection: another process, as far as the
    server or the file can tell). Apps are closed and their Redis keys dropped afterwards."""
    url = {"memory": "memory://", "redis": SHARED_URL, "sqlite": f"sqlite:///{tmp_path}/config.sqlite3"}[request.param]
    apps: list[QueueTasks] = []
    fresh = f"gc-{uuid4().hex[:8]}"

    def make(name: str | None = None) -> QueueTasks:
        app = QueueTasks(name=name or fresh, broker_url=url)
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()
    if request.param == "redis":
        client = redis_asyncio.Redis.from_url(SHARED_URL)
        keys = [key async for key in client.scan_iter(match=f"qtasks:{{{fresh}}}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def component(app: QueueTasks) -> Any:
    """The app's global config component, started."""
    await app.start()
    return app.global_config.component


async def test_set_many_writes_every_key_and_delete_removes_a_key_or_the_name(make_app: Callable[..., QueueTasks]) -> None:
    config = await component(make_app())
    await config.set_many("limits", {"rate": 5, "burst": {"size": 10}, "off": None})
    await config.set("other", "x", 1)
    assert await config.get_all("limits") == {"rate": 5, "burst": {"size": 10}, "off": None}
    await config.set_many("limits", {})
    await config.delete("limits", "rate")
    await config.delete("limits", "missing")
    assert await config.get_all("limits") == {"burst": {"size": 10}, "off": None}
    await config.delete("limits")
    await config.delete("never-there")
    assert await config.get_all("limits") == {}
    assert await config.get_match("*") == {"other": {"x": 1}}


async def test_compare_and_swap_sets_if_absent_replaces_what_it_expects_and_returns_what_was_there(make_app: Callable[..., QueueTasks]) -> None:
    config = await component(make_app())
    assert await config.compare_and_swap("locks", "job", None, {"owner": "a", "n": 1}) is None
    assert await config.compare_and_swap("locks", "job", None, {"owner": "b"}) == {"owner": "a", "n": 1}
    assert await config.compare_and_swap("locks", "job", {"owner": "z"}, {"owner": "b"}) == {"owner": "a", "n": 1}
    assert await config.get("locks", "job") == {"owner": "a", "n": 1}
    # compared by JSON encoding: what was read can be passed back as the expected value
    assert await config.compare_and_swap("locks", "job", {"owner": "a", "n": 1}, [1, 2.5, "b"]) == {"owner": "a", "n": 1}
    assert await config.get("locks", "job") == [1, 2.5, "b"]
    assert await config.compare_and_swap("locks", "job", [1, 2.5, "b"], None) == [1, 2.5, "b"]
    assert await config.get_all("locks") == {}
    await config.set("locks", "nulled", None)
    assert await config.compare_and_swap("locks", "nulled", None, "taken") is None  # a stored None counts as absent
    assert await config.get("locks", "nulled") == "taken"


async def test_values_that_are_not_json_are_refused_naming_the_key_and_nothing_is_written(make_app: Callable[..., QueueTasks]) -> None:
    app = make_app()
    config = await component(app)
    if app.url.startswith("memory"):
        pytest.skip("memory:// keeps Python objects as they are")
    with pytest.raises(SerializationError, match=r"global config limits/bad: the value cannot be stored as JSON .*; store str, int"):
        await config.set_many("limits", {"good": 1, "bad": {1, 2}})
    with pytest.raises(SerializationError, match="global config limits/k"):
        await config.compare_and_swap("limits", "k", None, object())
    assert await config.get_all("limits") == {}


async def test_concurrent_set_if_absent_has_exactly_one_winner_across_app_objects(make_app: Callable[..., QueueTasks]) -> None:
    """Twenty claims race for one key, spread over two app objects on the same data where the
    backend is shared (Redis, SQLite): exactly one sees None, every other one sees the winner."""
    first = make_app()
    apps = [first] if first.url.startswith("memory") else [first, make_app(first.name)]
    configs = [await component(app) for app in apps]
    answers: dict[str, Any] = {}

    async def claim(me: str, config: Any) -> None:
        answers[me] = await config.compare_and_swap("locks", "job", None, me)

    async with anyio.create_task_group() as group:
        for number in range(20):
            group.start_soon(claim, f"claimer-{number}", configs[number % len(configs)])
    winners = [me for me, before in answers.items() if before is None]
    assert len(winners) == 1
    assert {before for me, before in answers.items() if me not in winners} == {winners[0]}
    assert await configs[-1].get("locks", "job") == winners[0]


async def test_set_many_and_delete_are_seen_by_another_app_object(make_app: Callable[..., QueueTasks]) -> None:
    first = make_app()
    if first.url.startswith("memory"):
        pytest.skip("memory:// lives in one app object")
    writer, reader = await component(first), await component(make_app(first.name))
    await writer.set_many("shared", {"a": 1, "b": 2})
    assert await reader.get_all("shared") == {"a": 1, "b": 2}
    await reader.delete("shared", "a")
    assert await writer.get_all("shared") == {"b": 2}


async def test_the_facade_offers_the_primitives_and_set_many_fires_the_set_hook_per_entry() -> None:
    seen: list[tuple[str, str]] = []

    class Doubler:
        @hookimpl
        def qtasks_global_config_set(self, app: Any, entry: ConfigEntry) -> ConfigEntry:
            seen.append((entry.name, entry.key))
            return ConfigEntry(name=entry.name, key=entry.key, value=entry.value * 2)

    app = QueueTasks(name="facade", broker_url="memory://", plugins=[Doubler()])
    await app.global_config.set_many("n", {"a": 1, "b": 2})
    assert seen == [("n", "a"), ("n", "b")]
    assert await app.global_config.get_all("n") == {"a": 2, "b": 4}
    assert await app.global_config.compare_and_swap("n", "a", 2, 7) == 2  # no hook: the value is written as given
    assert await app.global_config.get("a", "n") == 7
    await app.global_config.delete("n", "a")
    assert await app.global_config.get_all("n") == {"b": 4}
    await app.global_config.delete("n")
    assert await app.global_config.get_all("n") == {}
    await app.close()
