"""Tests of the shop with the qtasks fixtures: a worker, a virtual clock, eager mode, a hook recorder."""

from __future__ import annotations

from typing import Any

import pytest
import shop
from apscheduler.triggers.interval import IntervalTrigger

from qtasks import SerializationError
from qtasks.timers import schedule

pytestmark = pytest.mark.anyio


async def test_an_order_is_charged_after_a_retry_and_its_receipt_follows_an_hour_later(qtasks_clock: Any, qtasks_worker: Any) -> None:
    """The worker runs the tasks; the clock jumps over the 30 s retry delay and the hour."""
    placed = await shop.place_order.add_task(7, 1250, timeout=5)
    assert placed.returning == "order 7 placed"
    await shop.app.join(timeout=5)  # the charge (retried) and the receipt (an hour later) are done
    assert shop.receipts == [7]
    assert qtasks_clock.offset == pytest.approx(3600, abs=5)  # virtual time moved an hour, in no time


async def test_a_timer_runs_the_report_every_night(qtasks_clock: Any, qtasks_worker: Any) -> None:
    schedule(shop.app, "stock_report", trigger=IntervalTrigger(days=1), name="nightly-report")
    await qtasks_clock.advance(3 * 24 * 3600)
    assert shop.reports == [1, 2, 3]


async def test_eager_mode_runs_the_order_in_add_task(qtasks_eager: Any, qtasks_hooks: Any) -> None:
    """No worker: each task runs at once, retries included, through the real lifecycle."""
    placed = await shop.place_order.add_task(8, 990)
    assert (await shop.app.get(placed.uuid)).status == "success"
    assert shop.receipts == [8]
    assert qtasks_hooks.names().count("task_acknowledged") == 3  # place_order, charge, send_receipt


async def test_eager_mode_refuses_what_a_broker_would_refuse(qtasks_eager: Any) -> None:
    with pytest.raises(SerializationError, match="argument 1"):
        await shop.place_order.add_task(9, {1.5})  # a set is not JSON
