"""Generator tasks: ``generate_handler``, the ``return`` value recorded, and ``task.stream()`` of values as they come."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

import anyio
import attrs

from qtasks.builtin_plugins.executor import YieldedValues
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import ExecutionCall, Task
from qtasks.kernel.portal import run_blocking

__all__ = ["TaskStream", "stream_name", "RETURN_KEY", "qtasks_register_task_options", "qtasks_make_stream"]

log = logging.getLogger("qtasks.generators")
RETURN_KEY = "generator_return"  # the record's extra field that holds a sync generator's return value
FIRST_WAIT, LONGEST_WAIT = 0.005, 0.1  # a stream reader's pause between reads, growing while nothing comes

_PUBLISHED: WeakKeyDictionary[Any, dict[str, int]] = WeakKeyDictionary()  # worker -> uuid -> values published


def stream_name(app: Any, uuid: UUID | str) -> str:
    """The global-config name under which a running generator task's values wait for readers."""
    return f"qtasks:stream:{app.name}:{uuid}"


class TaskStream:
    """The values a generator task yields, as they are produced: ``async for`` or ``for``.

    It reads the values the worker publishes while the task runs, then the final record, whose
    result holds them all; it ends when the task ends (after an ``error`` or ``cancel``, with
    the values published until then).
    """

    def __init__(self, app: Any, uuid: UUID) -> None:
        self._app = app
        self._uuid = uuid
        self._name = stream_name(app, uuid)

    async def next_values(self, index: int) -> tuple[list[Any], bool]:
        """Wait for the values from position ``index`` on; return them and whether the task ended."""
        wait = FIRST_WAIT
        while True:
            record = await self._app.get(self._uuid)
            published = await self._app.global_config.component.get_all(self._name)
            values = []
            while str(index + len(values)) in published:
                values.append(published[str(index + len(values))])
            if record is None or record.finished:
                if record is not None and record.status == "success" and isinstance(record.returning, list):
                    values.extend(record.returning[index + len(values):])
                return values, True
            if values:
                return values, False
            await anyio.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)

    async def __aiter__(self) -> AsyncIterator[Any]:
        index, done = 0, False
        while not done:
            values, done = await self.next_values(index)
            index += len(values)
            for value in values:
                yield value

    def __iter__(self) -> Iterator[Any]:
        index, done = 0, False
        while not done:
            values, done = run_blocking(self._app, self.next_values, index)
            index += len(values)
            yield from values


def _stream_flag(value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError("use True (publish each value for task.stream()) or False")


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare ``generate_handler`` and ``stream``."""
    register("generate_handler", None, "Called with each value a generator task yields; its return is the value kept.")
    register("stream", True, "Publish each value of a generator task as it comes, for task.stream().", _stream_flag)


@hookimpl(trylast=True)
async def qtasks_task_yielded(worker: Any, call: ExecutionCall, value: Any) -> None:
    """Publish the final value (after every other plugin) for ``task.stream()`` readers."""
    if not call.definition.option("stream", True):
        return
    counts = _PUBLISHED.setdefault(worker, {})
    index = counts.get(call.uuid, 0)
    try:
        await worker.app.global_config.component.set(stream_name(worker.app, call.uuid), str(index), value)
    except Exception as error:  # readers still get every value from the final record
        log.warning("task %s: publishing value %d for stream readers failed (%s: %s)", call.uuid, index, type(error).__name__, error)
    counts[call.uuid] = index + 1


@hookimpl
def qtasks_task_status(worker: Any, task: Task) -> Task | None:
    """Store a generator's result as a plain list, and its ``return`` value in ``extra``."""
    if not isinstance(task.returning, YieldedValues):
        return None
    extra = dict(task.extra)
    if task.returning.returned is not None:
        extra[RETURN_KEY] = task.returning.returned
    return attrs.evolve(task, returning=list(task.returning), extra=extra)


@hookimpl
def qtasks_task_finished(worker: Any, task: Task) -> Awaitable[None] | None:
    """Drop the published values once the record holds the outcome (a coroutine only then)."""
    counts = _PUBLISHED.get(worker)
    if counts is None or counts.pop(str(task.uuid), None) is None:
        return None
    return worker.app.global_config.component.delete(stream_name(worker.app, task.uuid))


@hookimpl
def qtasks_make_stream(app: Any, task: Task) -> TaskStream:
    """Follow ``task``'s values."""
    return TaskStream(app, task.uuid)
