"""Eager mode: ``add_task`` runs the task at once, in the caller, through the real worker lifecycle."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from qtasks._state import kernel_of
from qtasks.errors import ConfigurationError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.lifecycle import fail_delivery, process_delivery
from qtasks.kernel.model import Delivery, Task
from qtasks.kernel.steps import Steps
from qtasks.kernel.worker import Worker
from qtasks.testing.memory_queue import MemoryQueue
from qtasks.testing.records import RecordRoundTrip
from qtasks.testing.virtual_clock import let_time_pass

__all__ = ["eager", "EagerRunner", "EAGER_MAX_RUNS"]

EAGER_MAX_RUNS = 10_000  # runs one add_task may cause (a task that enqueues itself for ever would never end)


class EagerRunner:
    """The plugin :func:`eager` registers: once a task is enqueued, it claims and runs every task
    of the memory queue, the delayed ones too (time jumps to them), before ``add_task`` returns.

    Each run is the worker's own ``process_delivery``: the payload is decoded by the app's
    serializer, then the hooks, retries, ``Depends``, ``State``, typed arguments and middlewares
    apply as on a worker. Records are stored through :class:`RecordRoundTrip`, as the SQLite
    and Redis storages store them.

    Args:
        kernel: The async app (the kernel of a sync app).
    """

    name = "eager"

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self._worker: Worker | None = None
        self._held: list[Delivery] = []  # the runs in progress: a task that enqueues another is one
        self._runs = 0

    def _make_worker(self) -> Worker:
        kernel = self.kernel
        worker = Worker(kernel, 1, kernel.config.graceful_stop_timeout)
        worker.threads = anyio.CapacityLimiter(math.inf)  # a sync task waiting for a nested run holds its thread
        storage = RecordRoundTrip(kernel.storage)
        worker.broker, worker.storage, worker.serializer = kernel.broker, storage, kernel.serializer
        worker.steps = Steps(kernel.broker, storage)
        return worker

    @hookimpl(trylast=True)
    async def qtasks_task_enqueued(self, app: Any, task: Task) -> None:
        """Run what was just enqueued (and anything else queued) before ``add_task`` returns."""
        await self.run_queued()

    async def run_queued(self) -> None:
        """Claim and run every queued task until only the runs in progress are left."""
        if self.kernel.worker is not None:
            raise ConfigurationError(f"eager mode: a worker serves app {self.kernel.name!r} in this process; stop it, or leave eager mode")
        if self._worker is None:
            self._worker = self._make_worker()
        worker, broker, outermost = self._worker, self.kernel.broker, not self._held
        if outermost:
            self._runs = 0
        while True:
            await broker.heartbeat(worker.info(), self._held)  # the runs in progress keep their leases
            claimed = await broker.claim(worker.worker_id, 1, 0)
            if not claimed:
                due = MemoryQueue.of(self.kernel, "eager mode").next_due()
                if due is None:
                    break
                let_time_pass(self.kernel, due)
                continue
            self._runs += 1
            if self._runs > EAGER_MAX_RUNS:
                await broker.requeue(claimed[0], 0.0)
                raise RuntimeError(
                    f"eager mode: one add_task ran {EAGER_MAX_RUNS} tasks of app {self.kernel.name!r} and the queue is still not "
                    "empty: a task that enqueues itself again never lets it drain; test it with a worker and a VirtualClock"
                )
            await self._run(worker, claimed[0])
        if outermost:
            await broker.forget_worker(worker.worker_id)

    async def _run(self, worker: Worker, delivery: Delivery) -> None:
        self._held.append(delivery)
        try:
            await process_delivery(worker, delivery)
        except Exception as error:  # a plugin or component raised around the task: recorded as a worker does
            await fail_delivery(worker, delivery, error)
        finally:
            self._held.remove(delivery)


@contextmanager
def eager(app: Any) -> Iterator[Any]:
    """``with eager(app):`` runs each task as soon as it is enqueued, in the caller, with no worker.

    Nothing is skipped that a broker and a worker would do: the arguments go through the app's
    serializer (a call that cannot travel fails in ``add_task``), the worker's lifecycle runs
    with every plugin, and the record is stored as JSON, so a result that a real storage could
    not keep ends the task ``error``. Retries and delayed tasks run at once: time jumps over
    their delays (a :class:`~qtasks.testing.VirtualClock` of the app moves with it). ``add_task``
    returns the ``new`` record as usual; the task has ended by then (``app.get(uuid)``, or
    ``add_task(..., timeout=...)``, gives the final record at once).

    Args:
        app: A sync or async app on ``memory://`` that no worker of this process serves.

    Yields:
        The app.

    Raises:
        ConfigurationError: the app is not on ``memory://``, a worker serves it, or it is in
            eager mode already.
    """
    kernel = kernel_of(app)
    MemoryQueue.of(kernel, "eager mode")
    if kernel.worker is not None:
        raise ConfigurationError(
            f"eager mode: a worker serves app {kernel.name!r} in this process, and eager mode runs the tasks itself: use one or the other"
        )
    if kernel.pm.get_plugin(EagerRunner.name) is not None:
        raise ConfigurationError(f"eager mode: app {kernel.name!r} is in eager mode already")
    name = kernel.add_plugin(EagerRunner(kernel))
    try:
        yield app
    finally:
        kernel.remove_plugin(name)
