"""VirtualClock: time a test moves at once, for a memory:// app's delays, retry backoff and timer ticks."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio

from qtasks._state import kernel_of
from qtasks.builtin_plugins.timers import schedules_of
from qtasks.builtin_plugins.timers_leader import fire_due
from qtasks.errors import ConfigurationError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.drain import describe_left, poll_until_empty
from qtasks.kernel.portal import run_blocking
from qtasks.testing.memory_queue import MemoryQueue

__all__ = ["BaseVirtualClock", "VirtualClock", "SyncVirtualClock", "clock_of", "let_time_pass", "AUTO_POLL", "SETTLE_TIMEOUT"]

AUTO_POLL = 0.005  # seconds between two looks of the auto-advance at an idle queue
SETTLE_TIMEOUT = 30.0  # seconds advance() waits, at each step, for the worker to run what fell due

_Clock = TypeVar("_Clock", bound="BaseVirtualClock")
_CLOCKS: WeakKeyDictionary[Any, BaseVirtualClock] = WeakKeyDictionary()


def clock_of(app: Any) -> BaseVirtualClock | None:
    """The open virtual clock of ``app`` (a sync or async app), or None."""
    return _CLOCKS.get(kernel_of(app))


def let_time_pass(kernel: Any, seconds: float) -> None:
    """Let ``seconds`` pass at once for the delays of ``kernel``'s memory queue (and its clock,
    if it has one), without firing timer ticks or waiting for a worker: eager mode's jump."""
    MemoryQueue.of(kernel, "eager mode").shift(seconds)
    clock = _CLOCKS.get(kernel)
    if clock is not None:
        clock.offset += seconds


class _AutoAdvance:
    """The plugin of a clock with auto-advance: a worker service that jumps over idle waits."""

    name = "virtual_clock"

    def __init__(self, clock: BaseVirtualClock) -> None:
        self.clock = clock

    @hookimpl
    def qtasks_worker_services(self, worker: Any) -> Any:
        """Run the clock's auto-advance beside the worker's consumers."""
        return self.clock._auto_advance


class BaseVirtualClock:
    """Virtual time for one ``memory://`` app: what :class:`VirtualClock` and
    :class:`SyncVirtualClock` share. Virtual time is wall time plus :attr:`offset`, the seconds
    the clock has moved so far.

    It moves two things: the delayed envelopes of the memory broker (``countdown``, ``eta``,
    retry delays), and the timer schedules of the app, whose due ticks it enqueues itself (as
    the timers' leader would). Nothing else reads it: leases, ``max_time``, result expiry and
    the records' timestamps keep wall time.

    Args:
        app: The app (async for :class:`VirtualClock`, sync for :class:`SyncVirtualClock`).
        auto: Jump to the next delayed envelope whenever the app's worker has nothing to do now
            (a worker service: create the clock before the worker starts). Timer ticks alone
            never move the clock: :meth:`advance` does.

    Raises:
        ConfigurationError: the app is not on ``memory://``, has a clock already, or its worker
            started before an auto-advancing clock.
    """

    def __init__(self, app: Any, *, auto: bool = True) -> None:
        kernel = kernel_of(app)
        self._check_kind(app, kernel)
        self._queue = MemoryQueue.of(kernel, type(self).__name__)
        if kernel in _CLOCKS:
            raise ConfigurationError(f"app {kernel.name!r} has a virtual clock already: close it first, or get it with qtasks.testing.clock_of(app)")
        if auto and kernel.worker is not None:
            raise ConfigurationError(
                f"{type(self).__name__}(auto=True): the worker of app {kernel.name!r} has started already, and the auto-advance runs "
                "inside the worker: create the clock before the worker (or pass auto=False and call advance())"
            )
        self.app = app
        self.auto = auto
        self.offset = 0.0
        self.closed = False
        self._kernel = kernel
        self._first_seen: dict[str, datetime] = {}
        self._lock: anyio.Lock | None = None
        self._plugin = kernel.add_plugin(_AutoAdvance(self)) if auto else None
        _CLOCKS[kernel] = self

    def _check_kind(self, app: Any, kernel: Any) -> None:
        """Refuse an app of the other kind (each clock calls the kernel from its own side)."""

    def time(self) -> float:
        """Virtual time, as epoch seconds."""
        return time.time() + self.offset

    def now(self) -> datetime:
        """Virtual time, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), timezone.utc)

    def close(self) -> None:
        """Stop the clock: time is wall time again for new delays; what it moved stays moved."""
        if self.closed:
            return
        self.closed = True
        if self._plugin is not None:
            self._kernel.remove_plugin(self._plugin)
        _CLOCKS.pop(self._kernel, None)

    def __enter__(self: _Clock) -> _Clock:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    async def _advance(self, seconds: float, timeout: float | None) -> None:
        """Move ``seconds`` forward, stopping at each delayed envelope and timer tick on the way:
        the ticks due are enqueued, and a worker of this process runs what fell due before the
        clock moves on."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"advance: seconds must be a number >= 0, got {seconds!r}")
        await self._kernel.start()
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            end = self.offset + seconds
            at = self.time()
            while True:
                next_tick = at + await self._fire_ticks(at)
                await self._settle(timeout)
                left = end - self.offset
                if left <= 0:
                    return
                next_delay = self._queue.next_due()
                step = max(0.0, min(left, next_tick - self.time(), math.inf if next_delay is None else next_delay))
                self._queue.shift(step)
                self.offset += step
                at = min(self.time(), next_tick)  # on a tick: exactly its fire time

    async def _fire_ticks(self, at: float) -> float:
        """Enqueue the timer ticks due at virtual time ``at``; return the seconds to the next one."""
        if self._kernel.pm.get_plugin("timers") is None:
            return math.inf
        schedules = schedules_of(self._kernel).schedules
        if not schedules:
            return math.inf
        return await fire_due(self._kernel, schedules, datetime.fromtimestamp(at, timezone.utc), self._first_seen)

    async def _busy(self) -> dict[str, int]:
        return self._queue.busy()

    async def _settle(self, timeout: float | None) -> None:
        """Wait until the app's worker (if one serves in this process) has run what is due now."""
        if self._kernel.worker is None:
            return
        left = await poll_until_empty(self._busy, timeout)
        if left:
            raise TimeoutError(
                f"virtual clock of app {self._kernel.name!r}: the worker is still busy after {timeout}s: {describe_left(left)}; "
                "the clock waits for the tasks due now before it moves on (does a task wait for the test?)"
            )

    async def _auto_advance(self) -> None:
        """The worker service: when nothing is to be done now but something is delayed, jump to it."""
        while not self.closed:
            await anyio.sleep(AUTO_POLL)
            due = self._queue.next_due()
            if due is not None and not self._queue.busy() and not (self._lock is not None and self._lock.locked()):
                await self._advance(due, None)


class VirtualClock(BaseVirtualClock):
    """The virtual clock of an async app (``qtasks.asyncio.QueueTasks``); see :class:`BaseVirtualClock`.

    ``with VirtualClock(app) as clock:`` ... ``await clock.advance(1800)``.
    """

    def _check_kind(self, app: Any, kernel: Any) -> None:
        if kernel is not app:
            raise TypeError(f"VirtualClock: {app!r} is a sync app: use SyncVirtualClock")

    async def advance(self, seconds: float, *, timeout: float | None = SETTLE_TIMEOUT) -> None:
        """Move virtual time ``seconds`` forward, at once.

        On the way it stops at each delayed envelope and each timer tick: the ticks due are
        enqueued, and when a worker of the app serves in this process, the clock waits for it to
        run what fell due (and what that enqueued) before it moves on.

        Args:
            seconds: How far to move (>= 0).
            timeout: Wall seconds to wait for the worker at each stop (None: no limit).

        Raises:
            ValueError: ``seconds`` is negative or not a number.
            TimeoutError: the worker was still busy after ``timeout`` seconds, naming with what.
        """
        await self._advance(seconds, timeout)


class SyncVirtualClock(BaseVirtualClock):
    """The virtual clock of a sync app (``qtasks.QueueTasks``); ``clock.advance(s)`` blocks.
    See :class:`BaseVirtualClock`."""

    def _check_kind(self, app: Any, kernel: Any) -> None:
        if kernel is app:
            raise TypeError(f"SyncVirtualClock: {app!r} is an async app: use VirtualClock")

    def advance(self, seconds: float, *, timeout: float | None = SETTLE_TIMEOUT) -> None:
        """Move virtual time ``seconds`` forward, at once; see :meth:`VirtualClock.advance`."""
        run_blocking(self._kernel, self._advance, seconds, timeout)
