"""The worker: claims up to its free slots, runs tasks on bounded consumers, drains on stop."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from qtasks.errors import ConfigurationError
from qtasks.kernel.lifecycle import hand_back, process_delivery
from qtasks.kernel.model import Delivery, TaskDefinition

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["Worker"]

log = logging.getLogger("qtasks.worker")
CLAIM_WAIT = 5.0


class Worker:
    """Runs the tasks of one app with at most ``concurrency`` of them in flight.

    One claimer asks the broker for as many deliveries as there are free slots; ``concurrency``
    consumers run them. ``request_stop()`` stops claiming; running tasks get ``grace_period``
    seconds to finish, after which they are cancelled and handed back to the broker, as are
    claimed deliveries that had not started.
    """

    def __init__(self, app: AsyncQueueTasks, concurrency: int, grace_period: float = 30.0) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"worker concurrency must be a positive integer, got {concurrency!r}")
        self.app = app
        self.concurrency = concurrency
        self.grace_period = grace_period
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.threads = anyio.CapacityLimiter(concurrency)
        self.stopping = anyio.Event()
        self.stopped = anyio.Event()
        self.running: dict[str, Delivery] = {}
        self._in_flight = 0
        self._slot_freed = anyio.Event()
        self._claim_scope: anyio.CancelScope | None = None
        self._executors: dict[str, Any] = {}

    def executor_for(self, definition: TaskDefinition) -> Any:
        """Return the executor of a task definition, made once by ``qtasks_make_executor``."""
        executor = self._executors.get(definition.name)
        if executor is None:
            executor = self.app.pm.hook.qtasks_make_executor(app=self.app, task=definition)
            if executor is None:
                raise ConfigurationError(
                    f"no executor for task {definition.name!r}: the 'executor' plugin is blocked and nothing "
                    "implements qtasks_make_executor"
                )
            self._executors[definition.name] = executor
        return executor

    def request_stop(self) -> None:
        """Stop claiming; running tasks finish within the grace period."""
        if not self.stopping.is_set():
            self.stopping.set()
            self._slot_freed.set()
            if self._claim_scope is not None:
                self._claim_scope.cancel()

    async def serve(self) -> None:
        """Run until ``request_stop()``; returns once every claimed delivery is done or handed back."""
        app = self.app
        await app.start()
        await app.dispatcher.notify("qtasks_startup", app=app, component="worker")
        send, receive = anyio.create_memory_object_stream[Delivery](self.concurrency)
        all_done = anyio.Event()
        active = [self.concurrency]
        try:
            async with anyio.create_task_group() as consumers:
                for _ in range(self.concurrency):
                    consumers.start_soon(self._consume, receive.clone(), active, all_done)
                receive.close()
                async with send:
                    await self._claim_loop(send)
                with anyio.move_on_after(self.grace_period):
                    await all_done.wait()
                if not all_done.is_set():
                    log.warning("grace period of %ss is over: handing %d running task(s) back", self.grace_period, len(self.running))
                consumers.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await app.dispatcher.notify("qtasks_shutdown", app=app, component="worker")
            self.stopped.set()

    async def _claim_loop(self, send: MemoryObjectSendStream[Delivery]) -> None:
        broker = self.app.broker
        while not self.stopping.is_set():
            free = self.concurrency - self._in_flight
            if free <= 0:
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
                continue
            deliveries: list[Delivery] = []
            with anyio.CancelScope() as self._claim_scope:
                deliveries = await broker.claim(self.worker_id, free, CLAIM_WAIT)
            self._claim_scope = None
            self._in_flight += len(deliveries)
            for delivery in deliveries:
                await send.send(delivery)

    async def _consume(self, receive: MemoryObjectReceiveStream[Delivery], active: list[int], all_done: anyio.Event) -> None:
        try:
            async with receive:
                async for delivery in receive:
                    try:
                        if self.stopping.is_set():
                            with anyio.CancelScope(shield=True):
                                await hand_back(self, delivery)
                        else:
                            await process_delivery(self, delivery)
                    finally:
                        self._in_flight -= 1
                        self._slot_freed.set()
        finally:
            active[0] -= 1
            if active[0] == 0:
                all_done.set()
