"""Shared fixtures: the anyio backend and a fresh in-memory async app per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qtasks import _state


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """No environment leaks into a test's app, the global app is reset after it, and each test
    runs in its own working directory (where an app on the default URL keeps its SQLite file)."""
    monkeypatch.chdir(tmp_path)
    for name in ("QTASKS_BROKER_URL", "QTASKS_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    # The sample entry-point plugin is installed in the test environment; only the tests of
    # discovery turn autoload back on.
    monkeypatch.setenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "1")
    yield
    _state.app_main = None
    _state.log_main = None


@pytest.fixture
def app() -> Any:
    """A fresh async app on the memory broker."""
    from qtasks.asyncio import QueueTasks

    return QueueTasks(name="test", broker_url="memory://")
