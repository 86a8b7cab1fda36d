"""Group commit for SQLite: writes queued while a transaction runs share the next transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar


__all__ = ["WriteQueue", "run_batch", "begin_immediate", "retry_locked"]

T = TypeVar("T")

Operation = Callable[[sqlite3.Connection], Any]
FIRST_RETRY = 0.00005  # seconds before the first retry of a locked file; each pause is half as long again, up to LAST_RETRY
LAST_RETRY = 0.002


def retry_locked(attempt: Callable[[], T], timeout: float) -> T:
    """Call ``attempt()`` until it does not fail on a locked or busy file, for up to ``timeout``
    seconds, pausing 0.05 ms, then 0.075, 0.11... (half as long again each time) up to 2 ms between tries.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20... ms between tries and is not woken when
    the lock frees, and some operations (opening a new file in WAL mode while another process does
    the same) fail at once without asking it.
    """
    deadline = time.monotonic() + timeout
    delay = FIRST_RETRY
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as error:
            if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 1.5, LAST_RETRY)


def begin_immediate(connection: sqlite3.Connection, timeout: float) -> None:
    """Take the file's write lock, retrying a locked file for up to ``timeout`` seconds."""
    retry_locked(lambda: connection.execute("BEGIN IMMEDIATE"), timeout)


def run_batch(connection: sqlite3.Connection, operations: Sequence[Operation], timeout: float) -> list[tuple[bool, Any]]:
    """Run ``operations`` in one transaction, each in its own savepoint; return ``(ok, result or
    error)`` per operation. An operation that raises is rolled back alone; the others commit."""
    begin_immediate(connection, timeout)
    outcomes: list[tuple[bool, Any]] = []
    try:
        if len(operations) == 1:  # alone in its transaction: no savepoint needed
            try:
                outcomes.append((True, operations[0](connection)))
            except Exception as error:
                connection.execute("ROLLBACK")
                return [(False, error)]
            connection.execute("COMMIT")
            return outcomes
        for operation in operations:
            connection.execute("SAVEPOINT operation")
            try:
                result = operation(connection)
            except Exception as error:
                connection.execute("ROLLBACK TO operation")
                outcomes.append((False, error))
            else:
                outcomes.append((True, result))
            connection.execute("RELEASE operation")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return outcomes


class WriteQueue:
    """Runs write operations on the writer's thread, batching those that queue up.

    While one transaction runs, new operations wait in a list; the next transaction takes them
    all, so several tasks of a worker that finish together cost one commit, not one each. The
    queue is driven by callbacks on the event loop, not by a task, so no cancellation can stall
    it. A writer waits for its own operation to commit; a writer cancelled meanwhile does not
    wait, but its operation still runs, as a request already sent to a server would.

    Args:
        send: Queues ``operation(connection)`` on the writer's thread, calling ``done(ok, value)``
            on the event loop afterwards (``ConnectionThread.send``).
        ready: Raises when the file is not open.
        timeout: Seconds to wait for another process's write lock.
        explain: Turns an error into the one to raise (a SQLite error into one naming the file and the fix).
        committed: Called on the event loop after each transaction, with whether one of its
            operations asked to wake the process's waiters (``submit(..., wakes=True)``).
    """

    def __init__(self, send: Callable[[Operation, Callable[[bool, Any], None]], None], ready: Callable[[], None], timeout: float,
                 explain: Callable[[BaseException], BaseException], committed: Callable[[bool], None]) -> None:
        self._send = send
        self._ready = ready
        self._timeout = timeout
        self._explain = explain
        self._committed = committed
        self._pending: list[tuple[Operation, asyncio.Future[Any], bool]] = []
        self._running = False
        self._idle: asyncio.Event | None = None

    async def submit(self, operation: Operation, wakes: bool = True) -> Any:
        """Run ``operation(connection)`` in the next transaction and return its result; ``wakes``:
        whether the commit may give this process's waiters something to do (a task to claim)."""
        self._ready()  # fail at once on a closed file
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((operation, future, wakes))
        if not self._running:
            self._next_batch()
        return await future

    async def drain(self) -> None:
        """Wait until every queued operation has committed (or failed)."""
        while self._running:
            self._idle = self._idle or asyncio.Event()
            await self._idle.wait()

    def _next_batch(self) -> None:
        batch, self._pending = self._pending, []
        self._running = True
        self._send(partial(run_batch, operations=[op for op, _, _ in batch], timeout=self._timeout), partial(self._finished, batch))

    def _finished(self, batch: list[tuple[Operation, asyncio.Future[Any], bool]], ok: bool, value: Any) -> None:
        outcomes = value if ok else [(False, value)] * len(batch)  # a failed transaction fails every operation
        for (succeeded, result), (_, future, _) in zip(outcomes, batch):
            if future.done():  # its writer was cancelled: the write happened all the same
                continue
            if succeeded:
                future.set_result(result)
            else:
                future.set_exception(self._explain(result))
        self._committed(any(wakes for _, _, wakes in batch))
        if self._pending:
            self._next_batch()
            return
        self._running = False
        if self._idle is not None:
            self._idle.set()
            self._idle = None
