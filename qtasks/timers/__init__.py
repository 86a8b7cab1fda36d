"""Timers at their original import path: ``AsyncTimer`` / ``SyncTimer`` and ``schedule(app, ...)`` (docs/timers.md)."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Mapping
from typing import Any

import anyio

from qtasks.builtin_plugins.timers import add_schedule, check_enabled, schedules_of
from qtasks.builtin_plugins.timers_leader import run_schedules
from qtasks.builtin_plugins.timers_schedule import DEFAULT_GRACE, Schedule

__all__ = ["AsyncTimer", "SyncTimer", "Schedule", "schedule"]


def schedule(
    app: Any, task_name: str, *, trigger: Any, args: tuple[Any, ...] | list[Any] = (), kwargs: Mapping[str, Any] | None = None,
    priority: int | None = None, misfire: str = "skip", misfire_grace: float = DEFAULT_GRACE, name: str | None = None,
) -> Schedule:
    """Declare on ``app`` that ``task_name(*args, **kwargs)`` is enqueued on every fire time of
    ``trigger``. Every worker of the app runs the schedule; the one holding the leader lease
    enqueues each tick, once.

    Args:
        app: A sync or async app; the task must be registered on it already.
        task_name: The task to enqueue.
        trigger: An APScheduler 3.x trigger: ``IntervalTrigger(seconds=30)``, ``CronTrigger(hour=3)``, ...
        args: Positional arguments of each task.
        kwargs: Keyword arguments of each task.
        priority: The tasks' priority; None: the task's own.
        misfire: ``"skip"`` (default): a tick more than ``misfire_grace`` seconds late is dropped;
            ``"catch_up"``: every missed tick is enqueued, once each, in order.
        misfire_grace: Seconds a tick may be late under ``"skip"`` (default 1).
        name: The schedule's name, which keys its ticks in the global config; default
            ``"<task_name>@<trigger>"``. Give one to tell apart two schedules of one task and trigger.

    Returns:
        The declared :class:`Schedule`.

    Raises:
        ConfigurationError: the ``timers`` plugin is disabled, or the task is unknown.
        TypeError, ValueError: a wrong trigger, misfire policy, grace, priority, args or name.
    """
    return add_schedule(app, task_name, trigger, args, kwargs, priority, misfire, misfire_grace, name)


class AsyncTimer:
    """Schedules of an async app, and a standalone runner for them (the original API).

    ``add_task`` (or ``schedule``) declares a schedule on the app, so the app's workers run it
    too; ``run_forever()`` runs the app's schedules in this process, without a worker. Any number
    of workers and timers of one app share one leader lease: each tick is enqueued once.

    Args:
        app: The app whose tasks are enqueued.
        log: Accepted for compatibility; timers log on the ``qtasks.timers`` logger.
        config: Accepted for compatibility.

    Raises:
        ConfigurationError: the builtin ``timers`` plugin is disabled.
    """

    def __init__(self, app: Any, log: Any = None, config: Any = None) -> None:
        self.app = app
        self._kernel = check_enabled(app)
        self.log = log
        self.config = config
        self.tasks: dict[str, Any] = {}  # task name -> trigger of its last schedule (the original attribute)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:timer-{id(self):x}"
        self._stopping: anyio.Event | None = None
        self._stop_requested = False
        schedules_of(self._kernel)  # from now on, the app's workers run its schedules

    def add_task(
        self, *args: Any, task_name: str, trigger: Any, priority: int | None = None, timeout: float | None = None,
        misfire: str = "skip", **kwargs: Any,
    ) -> Schedule:
        """Enqueue ``task_name(*args, **kwargs)`` on every fire time of ``trigger`` (the original
        signature). ``timeout`` is accepted and ignored, as in the original; ``misfire`` is the
        misfire policy (see :func:`schedule`, which also takes a ``name``)."""
        return self.schedule(task_name, trigger=trigger, args=args, kwargs=kwargs, priority=priority, misfire=misfire)

    def schedule(self, task_name: str, **options: Any) -> Schedule:
        """Declare a schedule on the timer's app; the options are those of :func:`schedule`."""
        declared = schedule(self.app, task_name, **options)
        self.tasks[task_name] = declared.trigger
        return declared

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """Every schedule declared on the app (by any timer or ``schedule()``)."""
        return schedules_of(self._kernel).schedules

    async def serve(self) -> None:
        """Run the app's schedules in this task until :meth:`stop` (or cancellation); the
        components stay open. The lease is given up on the way out."""
        self._stopping = stopping = anyio.Event()
        if self._stop_requested:  # stop() came first
            stopping.set()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run_schedules, self._kernel, self.owner, schedules_of(self._kernel))
                await stopping.wait()
                group.cancel_scope.cancel()
        finally:
            self._stopping, self._stop_requested = None, False

    def stop(self) -> None:
        """Make :meth:`serve` return, or return at once when it starts later (call it on the
        event loop that runs it)."""
        self._stop_requested = True
        if self._stopping is not None:
            self._stopping.set()

    async def _serve_until_signal(self) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._stop_on_signals)
            try:
                await self.serve()
            finally:
                group.cancel_scope.cancel()
        await self._kernel.close()

    async def _stop_on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.stop()

    def run_forever(self) -> None:
        """Run the app's schedules in this process until SIGINT/SIGTERM, then close the app's components."""
        anyio.run(self._serve_until_signal)


class SyncTimer(AsyncTimer):
    """The timer of a sync app (``qtasks.QueueTasks``): ``run_forever()`` runs the schedules on
    the app's event loop thread and blocks until SIGINT/SIGTERM or :meth:`stop` (from any thread)."""

    def stop(self) -> None:
        """Make ``run_forever`` return; safe from any thread."""
        loop = self._kernel.loop_thread()
        loop.call_soon(super().stop)

    def run_forever(self) -> None:
        """Run the app's schedules until SIGINT/SIGTERM or :meth:`stop`, then close the app's components."""
        loop = self._kernel.loop_thread()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: self.stop())
        try:
            loop.call(self.serve)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            loop.call(self._kernel.close)
