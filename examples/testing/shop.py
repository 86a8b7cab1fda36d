"""A small shop app, tested by test_shop.py with the fixtures of the qtasks pytest plugin.

Run the tests with ``python -m pytest examples/testing -q``: no server, no worker process. The
payment gateway fails once, so ``charge`` is retried 30 s later; the receipt is sent an hour
after the order; the stock report runs every night. The virtual clock makes all of that instant.
"""

from __future__ import annotations

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="shop", broker_url="memory://")

gateway_failures: list[int] = []  # the orders whose first payment attempt failed
receipts: list[int] = []  # the orders whose receipt was sent
reports: list[int] = []  # the stock reports written


@app.task(retry=3, retry_delay=30)
async def charge(order_id: int, cents: int) -> str:
    """Charge an order; the gateway fails on an order's first attempt (the task is retried)."""
    if order_id not in gateway_failures:
        gateway_failures.append(order_id)
        raise ConnectionError("payment gateway timed out")
    return f"order {order_id}: charged {cents / 100:.2f}"


@app.task
async def send_receipt(order_id: int) -> None:
    """Send an order's receipt."""
    receipts.append(order_id)


@app.task
async def place_order(order_id: int, cents: int) -> str:
    """Charge the order now, and send its receipt an hour later."""
    await charge.add_task(order_id, cents)
    await send_receipt.add_task(order_id, countdown=3600)
    return f"order {order_id} placed"


@app.task
async def stock_report() -> int:
    """The nightly stock report; returns how many were written so far."""
    reports.append(len(reports) + 1)
    return len(reports)
