"""``sqlite://`` storage: JSON task records in the broker's file, changed with the queue in one transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any
from uuid import UUID

from qtasks.builtin_plugins import sqlite_queue as sql
from qtasks.builtin_plugins.records import RecordCodec
from qtasks.builtin_plugins.sqlite_broker import lost_lease
from qtasks.builtin_plugins.sqlite_database import SqliteDatabase, database_for
from qtasks.builtin_plugins.sqlite_results import ResultWaiter
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import FINAL_STATUSES, Delivery, Envelope, Task

__all__ = ["SqliteStorage", "qtasks_make_storage", "SWEEP_EVERY", "RUNNING_WRITE_DELAY"]

log = logging.getLogger("qtasks.sqlite")
RUNNING_WRITE_DELAY = 0.002  # seconds a running record may wait to be written with others
SWEEP_EVERY = 60.0  # seconds between deletions of expired records
# the status of a record, which RecordCodec writes first: {"status":"...", ... (no JSON1 needed)
_STATUS = """CAST(substr(record, 12, instr(substr(record, 12, 64), '"') - 1) AS TEXT)"""


class SqliteStorage:
    """Task records in the ``qtasks_records`` table of the app's SQLite file.

    A final record expires ``result_ttl`` seconds after it is stored. ``wait`` is woken at once
    by a final record stored in this process, and soon after one stored by another process
    (``ResultWaiter``). With the SQLite broker on the same file, a record and its queue change
    are one transaction (``CoupledStorage``).

    Args:
        database: The app's shared database file.
        app_name: The app's name; it keys every row.
        result_ttl: Seconds a final record is kept.
    """

    def __init__(self, database: SqliteDatabase, app_name: str, result_ttl: float = 86400.0) -> None:
        self.database = database
        self.app_name = app_name
        self.result_ttl = result_ttl
        self.codec = RecordCodec()
        self.results = ResultWaiter(database, app_name, self.codec.loads)
        self._swept = 0.0
        self._coupled = False
        self._running: dict[str, Task] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the shared database file."""
        await self.database.open()

    async def stop(self) -> None:
        """Wake every waiter, write nothing more and close the file (when nothing else uses it)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._running.clear()
        if self._flushing:
            await asyncio.wait(list(self._flushing))
        await self.results.close()
        await self.database.close()

    def _row(self, task: Task, clock: float) -> tuple[Any, ...]:
        final = task.status in FINAL_STATUSES
        return (self.app_name, str(task.uuid), int(final), clock + self.result_ttl if final else None, self.codec.dumps(task))

    def _store(self, connection: Any, rows: Sequence[tuple[Any, ...]], clock: float) -> None:
        connection.executemany("INSERT OR REPLACE INTO qtasks_records (app, uuid, final, expires, record) VALUES (?, ?, ?, ?, ?)", rows)
        if clock - self._swept >= SWEEP_EVERY and any(row[3] is not None for row in rows):
            self._swept = clock
            connection.execute("DELETE FROM qtasks_records WHERE expires IS NOT NULL AND expires <= ?", (clock,))

    async def save(self, task: Task) -> None:
        """Store the record; a final one gets its expiry and wakes its waiters.

        With the SQLite broker of the same file, a ``process`` record is written at most
        ``RUNNING_WRITE_DELAY`` seconds later, together with the others of that moment, only
        while its task is still leased, and not at all when the task ends sooner.
        """
        key = str(task.uuid)
        if task.status == "process" and self._coupled:
            self._running[key] = task
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(RUNNING_WRITE_DELAY, self._write_running)
            return
        self._running.pop(key, None)
        clock = time.time()
        row = self._row(task, clock)
        await self.database.write(lambda c: self._store(c, [row], clock), wakes=False)
        self.results.deliver(task)

    def _write_running(self) -> None:
        self._flush = None
        batch, self._running = self._running, {}
        if batch:
            task = asyncio.get_running_loop().create_task(self._store_running(batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _store_running(self, batch: dict[str, Task]) -> None:
        clock = time.time()
        rows = [self._row(task, clock) for task in batch.values()]
        try:
            await self.database.write(lambda c: sql.store_if_leased(c, self.app_name, rows), wakes=False)
        except Exception as error:  # the file is locked or gone: a later record replaces these anyway
            log.warning("writing %d running record(s) failed: %s", len(rows), error)

    async def get(self, uuid: UUID) -> Task | None:
        """Return the record, or None (never stored, or expired)."""
        row = await self.database.read(lambda c: c.execute(
            "SELECT record FROM qtasks_records WHERE app = ? AND uuid = ? AND (expires IS NULL OR expires > ?)",
            (self.app_name, str(uuid), time.time()),
        ).fetchone())
        return None if row is None else self.codec.loads(row[0])

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """Return the record once final, or None after ``timeout`` (at once for an unknown uuid)."""
        return await self.results.wait(str(uuid), timeout, lambda: self.get(uuid))

    async def status_counts(self) -> dict[str, int]:
        """The records kept, by status: one GROUP BY that reads every record of the app
        (O(records kept); see docs/stats.md)."""
        rows = await self.database.read(lambda c: c.execute(
            f"SELECT {_STATUS}, COUNT(*) FROM qtasks_records WHERE app = ? AND (expires IS NULL OR expires > ?) GROUP BY 1",
            (self.app_name, time.time()),
        ).fetchall())
        return dict(rows)

    async def finished_within(self, seconds: float) -> dict[str, int]:
        """The records that became final in the last ``seconds`` seconds, by status: a final record
        expires ``result_ttl`` after it is stored, so these are a range of the ``expires`` index."""
        rows = await self.database.read(lambda c: c.execute(
            f"SELECT {_STATUS}, COUNT(*) FROM qtasks_records INDEXED BY qtasks_records_expires WHERE expires >= ? AND app = ? GROUP BY 1",
            (time.time() - seconds + self.result_ttl, self.app_name),
        ).fetchall())
        return dict(rows)

    async def purge(self) -> int:
        """Delete every record of this app."""
        return await self.database.write(lambda c: c.execute("DELETE FROM qtasks_records WHERE app = ?", (self.app_name,)).rowcount, wakes=False)

    # -- CoupledStorage: one transaction per record-and-queue change -----------------------------

    def couples_with(self, broker: Any) -> bool:
        """True for the SQLite broker on this very file and app."""
        self._coupled = getattr(broker, "database", None) is self.database and getattr(broker, "app_name", None) == self.app_name
        return self._coupled

    async def save_enqueue(self, tasks: Sequence[Task], envelopes: Sequence[Envelope]) -> None:
        """Queue the envelopes and store the ``new`` records of those not already known."""
        clock = time.time()
        rows = [self._row(task, clock) for task in tasks]

        def enqueue(connection: Any) -> None:
            added = sql.insert_envelopes(connection, self.app_name, envelopes)
            self._store(connection, [row for row, new in zip(rows, added) if new], clock)

        await self.database.write(enqueue)

    async def _with_lease(self, task: Task, change: Any, wakes: bool = False) -> bool:
        """Run the queue ``change`` and, if this lease still held the envelope, store ``task``."""
        self._running.pop(str(task.uuid), None)
        clock = time.time()
        row = self._row(task, clock)

        def step(connection: Any) -> bool:
            held = change(connection)
            if held:
                self._store(connection, [row], clock)
            return held

        held = await self.database.write(step, wakes)
        if held:
            self.results.deliver(task)
        return held

    async def save_ack(self, task: Task, delivery: Delivery) -> None:
        """Store the final record and acknowledge, in one transaction (nothing if the lease was lost)."""
        uuid, receipt = delivery.envelope.uuid, delivery.receipt
        if not await self._with_lease(task, partial(sql.ack, app=self.app_name, uuid=uuid, receipt=receipt)):
            lost_lease(delivery)

    async def save_requeue(self, task: Task, delivery: Delivery, delay: float) -> None:
        """Store the record and give the envelope back, in one transaction."""
        uuid, receipt = delivery.envelope.uuid, delivery.receipt
        await self._with_lease(task, partial(sql.requeue, app=self.app_name, uuid=uuid, receipt=receipt, delay=delay), wakes=True)

    async def save_dead_letter(self, task: Task, delivery: Delivery, reason: str) -> None:
        """Store the ``error`` record and dead-letter the envelope, in one transaction."""
        uuid, receipt = delivery.envelope.uuid, delivery.receipt
        await self._with_lease(task, partial(sql.dead_letter, app=self.app_name, uuid=uuid, receipt=receipt, reason=reason))

    async def save_cancel(self, task: Task) -> bool:
        """Drop the queued envelope and store its ``cancel`` record, in one transaction."""
        return await self._with_lease(task, partial(sql.cancel, app=self.app_name, uuid=str(task.uuid)))


@hookimpl(trylast=True)
def qtasks_make_storage(app: Any, url: str) -> SqliteStorage | None:
    """Serve ``sqlite://`` URLs."""
    database = database_for(app, url)
    return None if database is None else SqliteStorage(database, app.name, result_ttl=app.config.result_ttl)
