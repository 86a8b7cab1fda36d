"""Run N worker processes of one app: restart one that dies, pass SIGINT/SIGTERM on, wait for them to drain."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence

import anyio
import anyio.abc
import attrs

__all__ = ["Supervisor", "WorkerProcess", "describe_exit", "MAX_QUICK_EXITS", "FIRST_RESTART_DELAY", "MAX_RESTART_DELAY"]

log = logging.getLogger("qtasks.supervisor")
MAX_QUICK_EXITS = 5  # a process failing this many times in a row right after it started: the supervisor gives up
FIRST_RESTART_DELAY = 0.25  # seconds before a restart; doubled for each quick failure in a row
MAX_RESTART_DELAY = 8.0
STOPPED = frozenset({0, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGINT})  # how a stopped process may end


def describe_exit(returncode: int) -> str:
    """Say how a process ended: ``status 3`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"status {returncode}"


@attrs.define
class WorkerProcess:
    """One slot of the supervisor: the process serving it now and its recent failures."""

    number: int
    process: anyio.abc.Process | None = None
    started_at: float = 0.0
    quick_exits: int = 0


class Supervisor:
    """Keep ``count`` copies of ``command`` running until SIGINT or SIGTERM.

    A process that ends with a non-zero status or by a signal is started again after a short
    delay; one that exits with status 0 by itself was stopped on purpose and is not. A signal
    to the supervisor is passed to every process, which drains (finishes its running tasks)
    and exits; the supervisor returns once all have.

    Args:
        command: The worker command (``python -m qtasks -A spec run``), without ``--processes``.
        count: How many processes to keep running.
        min_uptime: A process failing sooner than this after it started failed at startup;
            after ``MAX_QUICK_EXITS`` such failures in a row the supervisor stops them all.
    """

    def __init__(self, command: Sequence[str], count: int, min_uptime: float = 1.0) -> None:
        self.command = list(command)
        self.min_uptime = min_uptime
        self.workers = [WorkerProcess(number) for number in range(1, count + 1)]
        self.stopping: anyio.Event  # made on the supervisor's event loop, in run()
        self.failed = False
        self.gave_up: str | None = None  # why the supervisor stopped restarting, if it did

    def run(self) -> int:
        """Supervise until every process has ended; return 0, or 1 if it gave up or one failed while stopping."""
        return anyio.run(self._run)

    async def _run(self) -> int:
        self.stopping = anyio.Event()
        async with anyio.create_task_group() as signals:
            await signals.start(self._pass_signals_on)  # listening before the first process starts
            async with anyio.create_task_group() as slots:
                for worker in self.workers:
                    slots.start_soon(self._keep_running, worker)
            signals.cancel_scope.cancel()
        log.info("all %d worker processes ended", len(self.workers))
        return 1 if self.failed else 0

    def _stop_all(self, signum: int) -> None:
        self.stopping.set()
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signum)

    async def _pass_signals_on(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            task_status.started()
            async for signum in received:
                log.info("received %s: stopping the worker processes (they finish their running tasks)", signal.Signals(signum).name)
                self._stop_all(signum)

    async def _keep_running(self, worker: WorkerProcess) -> None:
        while not self.stopping.is_set():
            worker.process = await anyio.open_process(self.command, stdin=None, stdout=None, stderr=None)
            worker.started_at = time.monotonic()
            if self.stopping.is_set():  # the signal came while it was starting
                worker.process.send_signal(signal.SIGTERM)
            log.info("worker process %d started (pid %d)", worker.number, worker.process.pid)
            returncode = await worker.process.wait()
            if not self._should_restart(worker, returncode):
                return
            delay = min(FIRST_RESTART_DELAY * 2 ** max(worker.quick_exits - 1, 0), MAX_RESTART_DELAY)
            log.warning("worker process %d (pid %d) ended unexpectedly (%s); restarting it in %.2gs",
                        worker.number, worker.process.pid, describe_exit(returncode), delay)
            with anyio.move_on_after(delay):
                await self.stopping.wait()

    def _should_restart(self, worker: WorkerProcess, returncode: int) -> bool:
        """Log how the process ended; False when it must not be started again."""
        assert worker.process is not None
        pid, how = worker.process.pid, describe_exit(returncode)
        if self.stopping.is_set():
            if returncode not in STOPPED:  # a process still starting dies of the signal itself: that is fine
                self.failed = True
                log.error("worker process %d (pid %d) failed while stopping (%s)", worker.number, pid, how)
            return False
        if returncode == 0:
            log.info("worker process %d (pid %d) exited with status 0 by itself; it is not restarted", worker.number, pid)
            return False
        quick = time.monotonic() - worker.started_at < self.min_uptime
        worker.quick_exits = worker.quick_exits + 1 if quick else 0
        if worker.quick_exits >= MAX_QUICK_EXITS:
            self.failed = True
            self.gave_up = (f"gave up: worker process {worker.number} failed within {self.min_uptime:g}s of starting "
                            f"{worker.quick_exits} times in a row (last: {how})")
            log.error("%s; stopping the other worker processes", self.gave_up)
            self._stop_all(signal.SIGTERM)
            return False
        return True

