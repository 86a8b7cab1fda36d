"""The worker: bounded consumers that claim in batches up to the idle slots, and drain on stop."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from qtasks.errors import ConfigurationError
from qtasks.kernel.lifecycle import fail_delivery, hand_back, process_delivery
from qtasks.kernel.model import Delivery, TaskDefinition, WorkerInfo

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["Worker", "serve_app"]

log = logging.getLogger("qtasks.worker")
CLAIM_WAIT = 5.0
CLAIM_RETRY_DELAY = 0.05
CLAIM_RETRY_MAX = 2.0


class Worker:
    """Runs the tasks of one app with at most ``concurrency`` of them in flight.

    ``concurrency`` consumers each run one task at a time. An idle consumer takes the next
    claimed delivery; when there is none, one of the idle consumers asks the broker for as many
    deliveries as there are idle consumers (never more than the free slots) while the others
    wait for its answer. ``request_stop()`` stops claiming; running tasks get ``grace_period``
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
        self._holding: dict[str, Delivery] = {}
        self._claimed: deque[Delivery] = deque()
        self._idle = 0
        self._claiming = False
        self._claim_done: anyio.Event | None = None
        self._claim_scope: anyio.CancelScope | None = None
        self._executors: dict[str, Any] = {}
        self.broker: Any = None
        self.storage: Any = None
        self.serializer: Any = None
        self.steps: Any = None
        self.max_deliveries = app.config.max_deliveries
        self.started_at = time.time()
        self._claim_failures = 0
        self._consumers_left = concurrency
        self._drained = anyio.Event()

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
            if self._claim_scope is not None:
                self._claim_scope.cancel()

    async def serve(self) -> None:
        """Run until ``request_stop()``; returns once every claimed delivery is done or handed back."""
        app = self.app
        await app.start()
        self.broker, self.storage, self.serializer, self.steps = app.broker, app.storage, app.serializer, app.steps
        await app.dispatcher.notify("qtasks_startup", app=app, component="worker")
        try:
            async with anyio.create_task_group() as consumers:
                try:
                    await self._heartbeat()
                except Exception as error:  # the renewal loop keeps trying
                    log.error("registering the worker failed (%s: %s)", type(error).__name__, error)
                consumers.start_soon(self._renew_leases)
                for service in app.pm.hook.qtasks_worker_services(worker=self):
                    if service is not None:
                        consumers.start_soon(self._run_service, service)
                for _ in range(self.concurrency):
                    consumers.start_soon(self._consume)
                await self.stopping.wait()
                with anyio.move_on_after(self.grace_period):
                    await self._drained.wait()
                if self.running:
                    log.warning("grace period of %ss is over: handing %d running task(s) back", self.grace_period, len(self.running))
                consumers.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                while self._claimed:
                    delivery = self._claimed.popleft()
                    try:
                        await hand_back(self, delivery)
                    except Exception as error:  # its lease runs out and it runs elsewhere
                        log.warning("could not hand task %s back (%s); it returns when its lease ends", delivery.envelope.uuid, error)
                try:
                    await self.broker.forget_worker(self.worker_id)
                except Exception as error:  # the registry entry expires by itself
                    log.warning("could not remove worker %s from the registry: %s", self.worker_id, error)
                await app.dispatcher.notify("qtasks_shutdown", app=app, component="worker")
            self.stopped.set()

    async def _run_service(self, service: Any) -> None:
        """Run a plugin's worker service; an error is logged and the worker goes on."""
        try:
            await service()
        except Exception as error:
            self.app._internal_error(error, f"worker service {getattr(service, '__qualname__', service)!r}")

    async def _next(self) -> Delivery | None:
        """Return the next claimed delivery, claiming a batch when none is left; None on stop."""
        self._idle += 1
        try:
            while not self.stopping.is_set():
                if self._claimed:
                    return self._claimed.popleft()
                if self._claiming:
                    if self._claim_done is None:
                        self._claim_done = anyio.Event()
                    await self._claim_done.wait()
                    continue
                self._claiming = True
                try:
                    with anyio.CancelScope() as self._claim_scope:
                        try:
                            self._claimed.extend(await self.broker.claim(self.worker_id, self._idle, CLAIM_WAIT))
                        except Exception as error:  # the broker is unreachable or broken: back off, then retry
                            self._claim_failed(error)
                            await anyio.sleep(min(CLAIM_RETRY_DELAY * 2 ** min(self._claim_failures - 1, 6), CLAIM_RETRY_MAX))
                        else:
                            if self._claim_failures:
                                log.info("claiming works again after %d failure(s)", self._claim_failures)
                            self._claim_failures = 0
                finally:
                    self._claim_scope = None
                    self._claiming = False
                    if self._claim_done is not None:
                        self._claim_done.set()
                        self._claim_done = None
            return None
        finally:
            self._idle -= 1

    def info(self) -> WorkerInfo:
        """This worker as the registry shows it, with the uuids it runs."""
        return WorkerInfo(
            worker_id=self.worker_id, app=self.app.name, host=socket.gethostname(), pid=os.getpid(),
            concurrency=self.concurrency, started_at=self.started_at, seen_at=time.time(), running=tuple(self.running),
        )

    async def _heartbeat(self) -> None:
        """Renew the leases of every held delivery (running or claimed) and refresh the registry."""
        held = [*self._holding.values(), *self._claimed]
        await self.broker.heartbeat(self.info(), held)

    async def _renew_leases(self) -> None:
        """Heartbeat every third of the lease until the worker stops; failures are logged once."""
        interval = max(self.broker.lease / 3, 0.01)
        failures = 0
        while True:
            await anyio.sleep(interval)
            try:
                await self._heartbeat()
            except Exception as error:  # keep trying: the lease still has two thirds to go
                failures += 1
                if failures == 1:
                    log.error("renewing leases failed (%s: %s); retrying every %.2fs", type(error).__name__, error, interval)
            else:
                if failures:
                    log.info("leases renewed again after %d failure(s)", failures)
                failures = 0

    def _claim_failed(self, error: Exception) -> None:
        """Log a failed claim once per outage (the first failure after a success)."""
        self._claim_failures += 1
        if self._claim_failures == 1:
            log.error("claiming from the broker failed (%s: %s); retrying with backoff up to %ss", type(error).__name__, error, CLAIM_RETRY_MAX)
        elif self._claim_failures % 50 == 0:
            log.error("claiming from the broker still fails after %d attempts (%s)", self._claim_failures, error)

    async def _consume(self) -> None:
        try:
            while True:
                delivery = await self._next()
                if delivery is None:
                    return
                self._holding[delivery.envelope.uuid] = delivery
                try:
                    await process_delivery(self, delivery)
                except Exception as error:  # a plugin or component raised outside the task itself
                    try:
                        await fail_delivery(self, delivery, error)
                    except Exception as failure:  # the broker is unreachable: the lease brings it back
                        log.error("task %s: recording a failure failed too (%s: %s); it runs again when its lease ends",
                                  delivery.envelope.uuid, type(failure).__name__, failure)
                finally:
                    self._holding.pop(delivery.envelope.uuid, None)
        finally:
            self._consumers_left -= 1
            if self._consumers_left == 0:
                self._drained.set()


async def serve_app(app: AsyncQueueTasks, concurrency: int, handle_signals: bool) -> None:
    """Serve ``app`` with a new worker until SIGINT/SIGTERM (if handled) or ``app.stop()``,
    then stop the app's components."""
    app.worker = Worker(app, concurrency, app.config.graceful_stop_timeout)
    try:
        async with anyio.create_task_group() as group:
            if handle_signals:
                group.start_soon(_stop_on_signals, app)
            await app.worker.serve()
            group.cancel_scope.cancel()
    finally:
        app.worker = None
        await app.close()


async def _stop_on_signals(app: AsyncQueueTasks) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s: stopping (finishing the running tasks)", signal.Signals(signum).name)
            app.request_stop()
