"""The qtasks fixtures (qtasks_worker, qtasks_clock, qtasks_eager, qtasks_hooks) on the shop's app."""

from __future__ import annotations

from typing import Any

import pytest

import shop


@pytest.fixture
def qtasks_app() -> Any:
    """Test the shop's own app (it is on memory://) instead of a fresh one."""
    return shop.app


@pytest.fixture(autouse=True)
def _fresh_lists() -> None:
    """Each test starts with no failures, receipts or reports."""
    for seen in (shop.gateway_failures, shop.receipts, shop.reports):
        seen.clear()
