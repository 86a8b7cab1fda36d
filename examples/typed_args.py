"""Typed arguments: an attrs class and a pydantic model as task parameters, a dataclass as the result.

Run it with ``python examples/typed_args.py`` (the SQLite default, no server). The same task is
called with dicts, with instances and with the model's fields as keyword arguments; a call whose
arguments do not fit ends ``error`` before the function runs, and is not retried.
"""

from __future__ import annotations

import dataclasses

import anyio
import attrs
import pydantic

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="typed-args-example")
runs: list[str] = []


@attrs.define
class Line:
    """One line of a cart."""

    sku: str
    qty: int
    price: float


@attrs.define
class Cart:
    """What the customer buys: attrs classes are structured by cattrs."""

    lines: list[Line]


class Customer(pydantic.BaseModel):
    """Who buys: a pydantic model is validated by pydantic."""

    name: str
    email: str

    @pydantic.field_validator("email")
    @classmethod
    def _has_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("not an email address")
        return value


@dataclasses.dataclass
class Quote:
    """The result: stored as a dict."""

    customer: str
    total: float


@app.task(retry=2, retry_delay=0)
async def quote(cart: Cart, customer: Customer) -> Quote:
    """Price a cart; ``cart.lines`` holds ``Line`` instances and ``customer`` is a ``Customer``."""
    runs.append(customer.name)
    return Quote(customer=customer.name, total=sum(line.qty * line.price for line in cart.lines))


async def main() -> None:
    cart = {"lines": [{"sku": "tea", "qty": 3, "price": 2.5}]}
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        calls = {
            "dict": quote.add_task(cart, {"name": "Ann", "email": "ann@example.org"}, timeout=30),
            "instances": quote.add_task(Cart([Line("tea", 3, 2.5)]), Customer(name="Ann", email="ann@example.org"), timeout=30),
            "fields": quote.add_task(Cart([Line("cup", 1, 2.0)]), name="Bo", email="bo@example.org", timeout=30),
        }
        for label, call in calls.items():
            record = await call
            print(f"quote ({label}): {record.status}: {record.returning}")
        bad = await quote.add_task({"lines": [{"sku": "tea", "qty": "three", "price": 2.5}]}, name="Cy", email="cy at home", timeout=30)
        print(f"quote (bad): {bad.status} after {bad.attempts} attempt though retry=2; the function ran {len(runs)} times in all")
        message = bad.traceback.strip().splitlines()[-1]  # "...: its arguments do not fit the annotations: problem | problem"
        for problem in message.partition("the annotations: ")[2].split(" | "):
            print(problem)
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
