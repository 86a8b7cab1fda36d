"""Fixtures of the broker conformance suite: every test runs once per broker URL.

``memory://`` runs in this process only; ``redis://127.0.0.1:6379/15`` and a SQLite file in
the session's temporary folder are shared between processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest

from qtasks.asyncio import QueueTasks
from qtasks.kernel.config import QueueConfig

from .helpers import BrokerCase

BROKER_CASES = [
    pytest.param(BrokerCase("memory://", cross_process=False), id="memory"),
    pytest.param(BrokerCase("redis://127.0.0.1:6379/15", cross_process=True), id="redis"),
    pytest.param(BrokerCase("sqlite:///{tmp}/conformance.sqlite3", cross_process=True), id="sqlite"),
]


@pytest.fixture(params=BROKER_CASES)
def broker_case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BrokerCase:
    """The broker under test (``{tmp}`` in its URL: the session's temporary folder)."""
    case: BrokerCase = request.param
    return dataclasses.replace(case, url=case.url.format(tmp=tmp_path_factory.getbasetemp()))


@pytest.fixture
def cross_process(broker_case: BrokerCase) -> BrokerCase:
    """Skip the test unless the broker is shared between processes (a capability, not a guess)."""
    if not broker_case.cross_process:
        pytest.skip(f"{broker_case.url} lives in one process")
    return broker_case


@pytest.fixture
async def make_app(broker_case: BrokerCase, anyio_backend: str) -> AsyncIterator[Callable[..., QueueTasks]]:
    """A factory of async apps on the broker under test; every app made is closed after the test.

    ``make_app(**config)`` builds an app with a fresh unique name (so Redis keys of different
    tests never collide) and ``QueueConfig(**config)``; ``make_app(name=other.name, ...)`` builds
    a second app object on the same queue.
    """
    apps: list[QueueTasks] = []

    def make(name: str | None = None, **config: Any) -> QueueTasks:
        app = QueueTasks(name=name or f"conf-{uuid4().hex[:8]}", broker_url=broker_case.url, config=QueueConfig(**config))
        apps.append(app)
        return app

    yield make
    for app in reversed(apps):
        await app.close()
    if broker_case.url.startswith("redis"):
        await _delete_keys(broker_case.url, {app.name for app in apps})


async def _delete_keys(url: str, names: set[str]) -> None:
    """Leave the shared Redis as the test found it: drop every key of the test's apps."""
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(url)
    try:
        for name in names:
            keys = [key async for key in client.scan_iter(match=f"qtasks:{{{name}}}:*")]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
