"""Cancel from outside: ``app.cancel(uuid)`` stops a running task on whichever worker runs it."""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any
from weakref import WeakKeyDictionary

import anyio

from qtasks.errors import TaskCancelError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import ExecutionCall, Task

__all__ = [
    "CancelEvent",
    "RunningTasks",
    "cancel_event_of",
    "requests_name",
    "qtasks_task_scope",
    "qtasks_task_cancel_running",
    "qtasks_worker_services",
    "POLL_INTERVAL",
    "STALE_AFTER",
]

log = logging.getLogger("qtasks.cancel")
POLL_INTERVAL = 0.2  # seconds between two reads of the cancel requests, while tasks run
STALE_AFTER = 3600.0  # a request nobody took for this long (its task ended first) is dropped


class CancelEvent:
    """Set when a running task is asked to stop; ``reason`` says why. Sync tasks read it through
    ``self.ctx.cancelled`` (and ``self.ctx.sleep`` waits on it); for async ones, a request also
    cancels the run's scope.

    Args:
        threaded: The task runs in a worker thread: keep a ``threading.Event`` to wake its sleeps.
    """

    __slots__ = ("reason", "requested", "scope", "_wakes")

    def __init__(self, threaded: bool) -> None:
        self.reason = ""
        self.requested = False
        self.scope: anyio.CancelScope | None = None
        self._wakes = threading.Event() if threaded else None

    def is_set(self) -> bool:
        """True once the run was asked to stop."""
        return self.requested

    def wait(self, timeout: float) -> bool:
        """Block (a worker thread) up to ``timeout`` seconds or until a request; True on a request."""
        if self._wakes is None:
            raise RuntimeError("CancelEvent.wait() is for sync tasks, which run in worker threads")
        return self._wakes.wait(timeout)

    def request(self, reason: str) -> None:
        """Ask the run to stop (call it on the worker's event loop)."""
        if self.requested:
            return
        self.reason = reason
        self.requested = True
        if self._wakes is not None:
            self._wakes.set()
        if self.scope is not None:
            self.scope.cancel()


class RunningTasks:
    """The cancel events of one worker's running tasks, by uuid."""

    def __init__(self) -> None:
        self.events: dict[str, CancelEvent] = {}
        self.started = anyio.Event()


_RUNNING: WeakKeyDictionary[Any, RunningTasks] = WeakKeyDictionary()


def _running(worker: Any) -> RunningTasks:
    running = _RUNNING.get(worker)
    if running is None:
        running = _RUNNING[worker] = RunningTasks()
    return running


def cancel_event_of(worker: Any, uuid: str) -> CancelEvent | None:
    """The cancel event of a task that ``worker`` is running, or None."""
    running = _RUNNING.get(worker)
    return running.events.get(uuid) if running is not None else None


def requests_name(app: Any) -> str:
    """The global-config name under which cancel requests of ``app`` wait for their worker."""
    return f"qtasks:cancel:{app.name}"


class _Cancellable:
    """The scope one run runs in: registered by uuid, cancelled by a request (a sync context
    manager, so entering it costs no coroutine)."""

    __slots__ = ("running", "uuid", "event", "scope")

    def __init__(self, running: RunningTasks, uuid: str, threaded: bool, scoped: bool) -> None:
        self.running = running
        self.uuid = uuid
        self.event = CancelEvent(threaded)
        # A plain sync function runs in a thread that a scope cannot stop: it reads the event.
        self.scope = anyio.CancelScope() if scoped else None

    def __enter__(self) -> None:
        self.running.events[self.uuid] = self.event
        if not self.running.started.is_set():
            self.running.started.set()
        if self.scope is not None:
            self.scope.__enter__()
            self.event.scope = self.scope

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        self.running.events.pop(self.uuid, None)
        if self.scope is None:
            return False
        self.event.scope = None
        suppressed = bool(self.scope.__exit__(kind, error, trace))
        if self.scope.cancelled_caught:
            raise TaskCancelError(self.event.reason or "cancelled while running")
        return suppressed


@hookimpl
def qtasks_task_scope(worker: Any, call: ExecutionCall) -> Any:
    """Run each task under its own cancel scope, registered by uuid while it runs."""
    definition = call.definition
    threaded = not (definition.awaiting or definition.generating == "async")
    return _Cancellable(_running(worker), call.uuid, threaded, scoped=not threaded or definition.generating == "sync")


@hookimpl
async def qtasks_task_cancel_running(app: Any, task: Task, reason: str) -> bool:
    """Ask the task's worker to stop it: at once when it runs in this process, else through a
    request in the global config that every worker reads while it runs tasks."""
    uuid = str(task.uuid)
    if app.worker is not None:
        event = cancel_event_of(app.worker, uuid)
        if event is not None:
            event.request(reason)
            return True
    config = app.global_config.component
    await config.set(requests_name(app), uuid, {"reason": reason, "at": time.time()})
    record = await app.storage.get(task.uuid)
    if record is None or record.finished:  # it ended meanwhile: nothing to stop
        await config.delete(requests_name(app), uuid)
        return False
    return True


async def _serve_requests(worker: Any, running: RunningTasks) -> None:
    """Read the cancel requests every ``POLL_INTERVAL`` while this worker runs tasks."""
    config = worker.app.global_config.component
    name = requests_name(worker.app)
    failures = 0
    while True:
        if not running.events:
            running.started = anyio.Event()
            await running.started.wait()
        try:
            await _take_requests(config, name, running)
        except Exception as error:  # the config server is away: keep trying
            failures += 1
            if failures == 1:
                log.error("reading cancel requests failed (%s: %s); retrying", type(error).__name__, error)
        else:
            failures = 0
        await anyio.sleep(POLL_INTERVAL)


async def _take_requests(config: Any, name: str, running: RunningTasks) -> None:
    requests = await config.get_all(name)
    clock = time.time()
    for uuid, request in requests.items():
        event = running.events.get(uuid)
        if event is not None:
            event.request(str(request.get("reason", "")) if isinstance(request, dict) else str(request))
            await config.delete(name, uuid)
        elif isinstance(request, dict) and clock - float(request.get("at", clock)) > STALE_AFTER:
            await config.delete(name, uuid)


@hookimpl
def qtasks_worker_services(worker: Any) -> Any:
    """Watch for cancel requests made from other processes."""
    return partial(_serve_requests, worker, _running(worker))
