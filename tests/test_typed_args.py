"""typed_args: attrs, dataclass and pydantic parameters structured on the worker, validation errors, results, the blocked plugin."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pydantic
import pytest

from qtasks import QueueTasks as SyncQueueTasks
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins.typed_args import to_plain
from qtasks.errors import UnknownOptionError
from qtasks.kernel.model import Task
from qtasks.testing import running_worker
from subprocesses import run_example

pytestmark = pytest.mark.anyio



@attrs.define
class Item:
    """An attrs class, nested in the dataclass below."""

    sku: str
    qty: int


@dataclasses.dataclass
class Order:
    """A dataclass with a list of attrs instances and a datetime (JSON text on the wire)."""

    id: int
    items: list[Item]
    placed: datetime | None = None


class Customer(pydantic.BaseModel):
    """A pydantic model."""

    name: str
    age: int


class Address(pydantic.BaseModel):
    """A second pydantic model, with no field in common with Customer."""

    city: str
    zip_code: str = "00000"


class Contact(pydantic.BaseModel):
    """A model sharing the field ``name`` with Customer."""

    name: str


ORDER = Order(7, [Item("apple", 3), Item("pear", 1)], datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
ORDER_DATA = {"id": 7, "items": [{"sku": "apple", "qty": 3}, {"sku": "pear", "qty": 1}], "placed": "2024-05-01T12:00:00+00:00"}


def describe(order: Order) -> str:
    assert isinstance(order, Order) and all(isinstance(item, Item) for item in order.items)
    return f"{order.id}: " + ", ".join(f"{item.qty} {item.sku}" for item in order.items) + f" at {order.placed:%H:%M}"


async def test_an_attrs_or_dataclass_argument_arrives_as_an_instance_whether_sent_as_instance_or_dict(app: QueueTasks) -> None:
    @app.task
    async def summary(order: Order, first: Item) -> str:
        assert isinstance(first, Item)
        return describe(order) + f" / first {first.sku}"

    async with running_worker(app):
        sent_as_instances = await summary.add_task(ORDER, Item("apple", 3), timeout=10)
        sent_as_dicts = await summary.add_task(ORDER_DATA, first={"sku": "apple", "qty": "3"}, timeout=10)
    assert sent_as_instances.returning == sent_as_dicts.returning == "7: 3 apple, 1 pear at 12:00 / first apple"
    assert sent_as_instances.args == (ORDER_DATA, {"sku": "apple", "qty": 3})  # the record holds JSON data


@pytest.mark.parametrize("kind", ["async", "sync", "async generator", "sync generator"])
async def test_every_kind_of_task_function_gets_instances_and_its_results_are_stored_as_data(app: QueueTasks, kind: str) -> None:
    if kind == "async":
        async def handle(order: Order) -> Order:
            return dataclasses.replace(order, id=order.id + 1)
    elif kind == "sync":
        def handle(order: Order) -> Order:
            return dataclasses.replace(order, id=order.id + 1)
    elif kind == "async generator":
        async def handle(order: Order) -> AsyncIterator[Item]:
            for item in order.items:
                yield item
    else:
        def handle(order: Order) -> Iterator[Item]:
            for item in order.items:
                yield item

    app.task(name="handle")(handle)
    async with running_worker(app):
        record = await app.add_task("handle", ORDER, timeout=10)
    assert record is not None and record.status == "success", record.traceback
    if kind.endswith("generator"):
        assert record.returning == ORDER_DATA["items"]
    else:
        assert record.returning == {**ORDER_DATA, "id": 8}


async def test_containers_and_optional_models_are_structured(app: QueueTasks) -> None:
    @app.task
    async def tally(orders: list[Order], by_name: dict[str, Item], extra: Item | None = None) -> list[str]:
        assert all(isinstance(item, Item) for item in by_name.values())
        return [describe(order) for order in orders] + sorted(by_name) + [repr(extra)]

    async with running_worker(app):
        record = await tally.add_task([ORDER, ORDER_DATA], {"a": Item("x", 1), "b": {"sku": "y", "qty": 2}}, timeout=10)
        with_extra = await tally.add_task([], {}, extra={"sku": "z", "qty": 5}, timeout=10)
    assert record.returning == ["7: 3 apple, 1 pear at 12:00", "7: 3 apple, 1 pear at 12:00", "a", "b", "None"]
    assert with_extra.returning == ["Item(sku='z', qty=5)"]


async def test_star_args_and_star_kwargs_annotated_with_a_model_are_structured_item_by_item(app: QueueTasks) -> None:
    @app.task
    async def pack(label: str, *items: Item, **named: Item) -> list[str]:
        assert all(isinstance(item, Item) for item in (*items, *named.values()))
        return [label, *(item.sku for item in items), *(f"{key}={item.sku}" for key, item in named.items())]

    async with running_worker(app):
        record = await pack.add_task("box", {"sku": "a", "qty": 1}, Item("b", 2), top={"sku": "c", "qty": 3}, timeout=10)
    assert record.returning == ["box", "a", "b", "top=c"]


async def test_a_pydantic_model_is_validated_from_a_dict_an_instance_or_its_fields_in_any_position(app: QueueTasks) -> None:
    @app.task
    async def greet(greeting: str, customer: Customer, address: Address | None = None) -> str:
        assert isinstance(customer, Customer) and (address is None or isinstance(address, Address))
        return f"{greeting} {customer.name} ({customer.age})" + (f" in {address.city} {address.zip_code}" if address else "")

    async with running_worker(app):
        as_dict = await greet.add_task("hi", {"name": "Ann", "age": "41"}, timeout=10)
        as_instance = await greet.add_task("hi", Customer(name="Ann", age=41), address=Address(city="Oslo"), timeout=10)
        as_fields = await greet.add_task("hi", name="Ann", age=41, city="Oslo", zip_code="0150", timeout=10)
        keyword = await greet.add_task(greeting="hi", customer={"name": "Ann", "age": 41}, address={"city": "Oslo"}, timeout=10)
    assert as_dict.returning == "hi Ann (41)"
    assert as_instance.returning == keyword.returning == "hi Ann (41) in Oslo 00000"
    assert as_fields.returning == "hi Ann (41) in Oslo 0150"
    assert as_instance.args == ("hi", {"name": "Ann", "age": 41}) and as_instance.kwargs == {"address": {"city": "Oslo", "zip_code": "00000"}}


async def test_fields_shared_by_two_models_are_refused_as_ambiguous(app: QueueTasks) -> None:
    @app.task
    async def link(customer: Customer, contact: Contact) -> str:
        return f"{customer.name}-{contact.name}"

    async with running_worker(app):
        ambiguous = await link.add_task(name="Ann", age=3, timeout=10)
        whole = await link.add_task(customer={"name": "Ann", "age": 3}, contact={"name": "Bo"}, timeout=10)
    assert ambiguous.status == "error"
    assert "keyword argument 'name' is a field of both 'customer' and 'contact'; pass those models whole instead" in ambiguous.traceback
    assert whole.returning == "Ann-Bo"


async def test_arguments_that_do_not_fit_end_the_task_error_before_it_runs_and_it_is_not_retried(app: QueueTasks) -> None:
    calls: list[Any] = []

    @app.task(retry=3, retry_delay=0)
    async def ship(order: Order, customer: Customer) -> None:
        calls.append(order)

    async with running_worker(app):
        record = await ship.add_task({"id": "seven", "items": [{"sku": "apple"}]}, name="Ann", age="old", timeout=10)
    assert record.status == "error" and calls == []
    assert (record.attempts, len(record.errors)) == (1, 1)
    assert record.traceback.strip().splitlines()[-1] == (
        "qtasks.builtin_plugins.typed_args.ArgumentValidationError: task 'ship': the function was not called, its arguments do not fit "
        "the annotations: parameter 'order' (Order): invalid value for type, expected int @ $.id; required field missing @ $.items[0].qty"
        " | parameter 'customer' (Customer, from the keyword arguments age, name): age: Input should be a valid integer, "
        "unable to parse string as an integer"
    )


async def test_a_pydantic_model_nested_in_a_container_reports_its_own_errors(app: QueueTasks) -> None:
    @app.task
    async def invite(guests: list[Customer]) -> int:
        return len(guests)

    async with running_worker(app):
        record = await invite.add_task([{"name": "Ann", "age": 1}, {"name": "Bo"}], timeout=10)
    assert record.status == "error"
    assert "parameter 'guests' (list[Customer]): invalid Customer: age: Field required @ $[1]" in record.traceback


async def test_a_returned_pydantic_model_is_stored_as_json_data(app: QueueTasks) -> None:
    @app.task(echo=True)
    async def register(self: Any, customer: Customer) -> dict[str, Any]:
        assert self.task_name == "register" and isinstance(customer, Customer)
        return {"customer": customer.model_copy(update={"age": customer.age + 1}), "address": Address(city="Rome")}

    async with running_worker(app):
        record = await register.add_task({"name": "Ann", "age": 41}, timeout=10)
    assert record.returning == {"customer": {"name": "Ann", "age": 42}, "address": {"city": "Rome", "zip_code": "00000"}}


async def test_the_default_sqlite_url_carries_models_both_ways() -> None:
    app = QueueTasks(name="typed-sqlite")

    @app.task
    def upgrade(customer: Customer, order: Order) -> tuple[Customer, Order]:
        return Customer(name=customer.name.upper(), age=customer.age), order

    async with running_worker(app):
        record = await upgrade.add_task(Customer(name="ann", age=5), ORDER, timeout=10)
    assert record.status == "success", record.traceback
    assert record.returning == [{"name": "ANN", "age": 5}, ORDER_DATA]
    assert Path("qtasks.sqlite3").exists()


def test_a_sync_app_structures_models_and_refuses_bad_ones() -> None:
    app = SyncQueueTasks(name="typed-sync", broker_url="memory://")
    calls: list[str] = []

    @app.task
    def label(order: Order, customer: Customer) -> str:
        calls.append(customer.name)
        return f"{customer.name}: {describe(order)}"

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 1})
    worker.start()
    try:
        good = label.add_task(ORDER, name="Ann", age=3, timeout=10)
        bad = label.add_task(ORDER_DATA, {"name": "Bo", "age": "x"}, timeout=10)
    finally:
        app.stop()
        worker.join(10)
    assert good is not None and good.returning == "Ann: 7: 3 apple, 1 pear at 12:00"
    assert bad is not None and bad.status == "error" and calls == ["Ann"]
    assert "parameter 'customer' (Customer): age: Input should be a valid integer" in bad.traceback


async def test_annotations_given_as_objects_work_like_future_strings(app: QueueTasks) -> None:
    def count(order, *, customer):  # type: ignore[no-untyped-def]
        return [len(order.items), customer.name]

    count.__annotations__ = {"order": Order, "customer": Customer}  # what a module without __future__ has
    handle = app.task(count)
    async with running_worker(app):
        record = await handle.add_task(ORDER_DATA, customer={"name": "Ann", "age": 2}, timeout=10)
    assert record.returning == [2, "Ann"]


@pytest.mark.parametrize("annotation", [Order, Item, Customer, list[Item], dict[str, Customer], Order | None])
def test_a_model_parameter_names_the_blocked_plugin(annotation: Any) -> None:
    app = QueueTasks(name="typed-blocked", broker_url="memory://", disable_plugins=["typed_args"])

    def job(value):  # type: ignore[no-untyped-def]
        return value

    job.__annotations__ = {"value": annotation}
    with pytest.raises(UnknownOptionError, match="parameter 'value' uses an attrs class, dataclass or pydantic model annotation, which plugin 'typed_args' provides, and it is disabled"):
        app.task(job)


def test_the_blocked_plugin_leaves_plain_and_qtasks_annotations_alone() -> None:
    app = QueueTasks(name="typed-blocked-plain", broker_url="memory://", disable_plugins=["typed_args"])

    def job(value: dict[str, int], record: Task | None = None) -> None:  # Task: an attrs class of QTasks itself
        return None

    assert app.task(job).task_name == "job"


def test_to_plain_leaves_values_without_models_untouched() -> None:
    values = [1, ("a", [2.0, None]), {"k": [True]}]
    assert to_plain(values) is values
    assert to_plain((Item("a", 1), 2)) == [{"sku": "a", "qty": 1}, 2]


def test_pydantic_is_never_imported_by_the_plugin() -> None:
    code = (
        "import sys, attrs, anyio\n"
        "from qtasks.asyncio import QueueTasks\n"
        "from qtasks.testing import running_worker\n"
        "@attrs.define\nclass Point:\n    x: int\n"
        "app = QueueTasks(name='no-pydantic', broker_url='memory://')\n"
        "@app.task\nasync def move(p: Point) -> Point:\n    return Point(p.x + 1)\n"
        "async def main():\n"
        "    async with running_worker(app):\n"
        "        print((await move.add_task(Point(1), timeout=10)).returning)\n"
        "anyio.run(main)\n"
        "print('pydantic' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["{'x': 2}", "False"]


def test_the_typed_args_example_runs(tmp_path: Path) -> None:
    assert run_example("typed_args", tmp_path) == [
        "quote (dict): success: {'customer': 'Ann', 'total': 7.5}",
        "quote (instances): success: {'customer': 'Ann', 'total': 7.5}",
        "quote (fields): success: {'customer': 'Bo', 'total': 2.0}",
        "quote (bad): error after 1 attempt though retry=2; the function ran 3 times in all",
        "parameter 'cart' (Cart): invalid value for type, expected int @ $.lines[0].qty",
        "parameter 'customer' (Customer, from the keyword arguments email, name): email: Value error, not an email address",
    ]
