"""The plugin's pytest fixtures: a memory:// app, its worker, a hook recorder, eager mode, a virtual clock.

Each comes twice: ``qtasks_*`` on the async app ``qtasks_app`` (async tests, run by anyio) and
``qtasks_sync_*`` on the sync app ``qtasks_sync_app`` (plain tests). Override ``qtasks_app`` or
``qtasks_sync_app`` in a ``conftest.py`` to use your project's app (on ``memory://``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.testing.eager_mode import eager
from qtasks.testing.recorder import HookRecorder, recording_hooks
from qtasks.testing.virtual_clock import SyncVirtualClock, VirtualClock
from qtasks.testing.workers import running_worker

__all__ = [
    "hook_recorder", "qtasks_app", "qtasks_worker", "qtasks_hooks", "qtasks_clock", "qtasks_eager",
    "qtasks_sync_app", "qtasks_sync_worker", "qtasks_sync_hooks", "qtasks_sync_clock", "qtasks_sync_eager",
]

APP_NAME = "qtasks-test"


def _clock_before_worker(request: pytest.FixtureRequest, clock_fixture: str) -> None:
    """Make the test's clock first when it has one: its auto-advance runs inside the worker, which
    takes its services when it starts."""
    if clock_fixture in request.fixturenames:
        request.getfixturevalue(clock_fixture)


@pytest.fixture
def hook_recorder() -> Iterator[type[HookRecorder]]:
    """The :class:`HookRecorder` class: ``recorder = hook_recorder(app.pm.specs)``."""
    yield HookRecorder


@pytest.fixture
async def qtasks_app() -> AsyncIterator[QueueTasks]:
    """A fresh async app (``qtasks.asyncio.QueueTasks``) on ``memory://``, closed after the test."""
    app = QueueTasks(name=APP_NAME, broker_url="memory://")
    yield app
    await app.close()


@pytest.fixture
async def qtasks_worker(request: pytest.FixtureRequest, qtasks_app: Any) -> AsyncIterator[Any]:
    """A worker serving ``qtasks_app`` in this process during the test (it drains after)."""
    _clock_before_worker(request, "qtasks_clock")
    async with running_worker(qtasks_app) as worker:
        yield worker


@pytest.fixture
def qtasks_hooks(qtasks_app: Any) -> Iterator[HookRecorder]:
    """A :class:`HookRecorder` registered on ``qtasks_app`` during the test."""
    with recording_hooks(qtasks_app) as hooks:
        yield hooks


@pytest.fixture
def qtasks_clock(qtasks_app: Any) -> Iterator[VirtualClock]:
    """A :class:`~qtasks.testing.VirtualClock` on ``qtasks_app`` (auto-advance on)."""
    with VirtualClock(qtasks_app) as clock:
        yield clock


@pytest.fixture
def qtasks_eager(qtasks_app: Any) -> Iterator[Any]:
    """``qtasks_app`` in eager mode during the test (see :func:`~qtasks.testing.eager`)."""
    with eager(qtasks_app):
        yield qtasks_app


@pytest.fixture
def qtasks_sync_app() -> Iterator[SyncQueueTasks]:
    """A fresh sync app (``qtasks.QueueTasks``) on ``memory://``, closed after the test."""
    app = SyncQueueTasks(name=APP_NAME, broker_url="memory://")
    yield app
    app.close()


@pytest.fixture
def qtasks_sync_worker(request: pytest.FixtureRequest, qtasks_sync_app: Any) -> Iterator[Any]:
    """A worker serving ``qtasks_sync_app`` on its event loop thread during the test."""
    _clock_before_worker(request, "qtasks_sync_clock")
    with running_worker(qtasks_sync_app) as worker:
        yield worker


@pytest.fixture
def qtasks_sync_hooks(qtasks_sync_app: Any) -> Iterator[HookRecorder]:
    """A :class:`HookRecorder` registered on ``qtasks_sync_app`` during the test."""
    with recording_hooks(qtasks_sync_app) as hooks:
        yield hooks


@pytest.fixture
def qtasks_sync_clock(qtasks_sync_app: Any) -> Iterator[SyncVirtualClock]:
    """A :class:`~qtasks.testing.SyncVirtualClock` on ``qtasks_sync_app`` (auto-advance on)."""
    with SyncVirtualClock(qtasks_sync_app) as clock:
        yield clock


@pytest.fixture
def qtasks_sync_eager(qtasks_sync_app: Any) -> Iterator[Any]:
    """``qtasks_sync_app`` in eager mode during the test."""
    with eager(qtasks_sync_app):
        yield qtasks_sync_app
