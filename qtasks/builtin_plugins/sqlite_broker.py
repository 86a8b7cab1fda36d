"""``sqlite://`` broker: a durable queue in one local file, shared by every process that opens it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import attrs

from qtasks.builtin_plugins import sqlite_queue as sql
from qtasks.builtin_plugins.sqlite_database import SqliteDatabase, database_for
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import DeadLetter, Delivery, Envelope, WorkerInfo
from qtasks.kernel.protocols import QueueCounts

__all__ = ["SqliteBroker", "qtasks_make_broker", "lost_lease"]

log = logging.getLogger("qtasks.sqlite")


def lost_lease(delivery: Delivery) -> None:
    """Log an ack that came after the delivery's lease was lost."""
    log.warning("task %s: the lease was lost before the ack (the worker stalled for a whole lease, or the task "
                "was given back); this outcome is not stored and the task runs again elsewhere", delivery.envelope.uuid)


class SqliteBroker:
    """A broker on a SQLite file in WAL mode: leased, at-least-once delivery with nothing to install.

    Every state change is one transaction (see ``sqlite_queue`` for the table). An idle worker
    waits on the database's change watcher, which wakes it within milliseconds of a commit by any
    process, and uses no CPU while nothing changes. Several apps can share one file: rows carry
    the app's name.

    Args:
        database: The app's shared database file.
        app_name: The app's name; it keys every row.
        lease: Seconds a claim lasts without a heartbeat.
    """

    def __init__(self, database: SqliteDatabase, app_name: str, lease: float = 30.0) -> None:
        self.database = database
        self.app_name = app_name
        self.lease = lease
        self._found_work = False

    async def start(self) -> None:
        """Open the shared database file."""
        await self.database.open()

    async def stop(self) -> None:
        """Close the shared database file (when no other component uses it)."""
        await self.database.close()

    async def ping(self) -> bool:
        """Return whether the file answers a query."""
        return await self.database.read(lambda c: c.execute("SELECT 1").fetchone()) == (1,)

    async def enqueue(self, envelopes: Sequence[Envelope]) -> None:
        """Queue envelopes in one transaction (all or none); a uuid already known is skipped."""
        await self.database.write(partial(sql.insert_envelopes, app=self.app_name, envelopes=envelopes))

    async def claim(self, worker_id: str, max_count: int, timeout: float) -> list[Delivery]:
        """Lease up to ``max_count`` envelopes, waiting up to ``timeout`` seconds for the first."""
        deadline = time.monotonic() + timeout
        watcher = self.database.watcher
        while True:
            since = watcher.generation
            # after a claim that found work, claim again at once; after an empty one, look first
            # (a read), so that idle workers do not take the write lock from busy processes
            worth_it, due = (True, None) if self._found_work else await self.database.read(partial(sql.claimable, app=self.app_name))
            if worth_it:
                rows, due = await self.database.write(partial(sql.claim, app=self.app_name, worker_id=worker_id, max_count=max_count, lease=self.lease), wakes=False)
                self._found_work = bool(rows)
                if rows:
                    return [self._delivery(row) for row in rows]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if due is not None:
                remaining = min(remaining, max(due - time.time(), 0.001))
            await watcher.wait(since, remaining)

    @staticmethod
    def _delivery(row: tuple[Any, ...]) -> Delivery:
        uuid, priority, payload, deliveries, lost, receipt = row
        return Delivery(envelope=Envelope(uuid=uuid, priority=priority, payload=payload), delivery_count=deliveries, lost=lost, receipt=receipt)

    async def heartbeat(self, worker: WorkerInfo, deliveries: Sequence[Delivery]) -> None:
        """Record the worker as alive (dropping ones silent for three leases) and renew its leases."""
        entry = json.dumps(attrs.asdict(worker))
        leases = [(d.envelope.uuid, d.receipt) for d in deliveries]

        def beat(connection: Any) -> None:
            clock = time.time()
            connection.execute(
                "INSERT OR REPLACE INTO qtasks_workers (app, worker_id, seen_at, info) VALUES (?, ?, ?, ?)",
                (self.app_name, worker.worker_id, clock, entry),
            )
            connection.execute("DELETE FROM qtasks_workers WHERE app = ? AND seen_at < ?", (self.app_name, clock - 3 * self.lease))
            sql.renew(connection, self.app_name, leases, self.lease)

        await self.database.write(beat, wakes=False)

    async def forget_worker(self, worker_id: str) -> None:
        """Remove the worker's registry entry."""
        await self.database.write(lambda c: c.execute("DELETE FROM qtasks_workers WHERE app = ? AND worker_id = ?", (self.app_name, worker_id)), wakes=False)

    async def workers(self) -> list[WorkerInfo]:
        """The workers whose last heartbeat is within three leases."""
        oldest = time.time() - 3 * self.lease
        rows = await self.database.read(lambda c: c.execute(
            "SELECT info, seen_at FROM qtasks_workers WHERE app = ? AND seen_at >= ? ORDER BY worker_id", (self.app_name, oldest)
        ).fetchall())
        found = []
        for entry, seen_at in rows:
            fields = json.loads(entry)
            found.append(WorkerInfo(**{**fields, "running": tuple(fields["running"]), "seen_at": seen_at}))
        return found

    async def ack(self, delivery: Delivery) -> None:
        """Delete the envelope (only while this delivery's lease holds it)."""
        if not await self.database.write(partial(sql.ack, app=self.app_name, uuid=delivery.envelope.uuid, receipt=delivery.receipt), wakes=False):
            lost_lease(delivery)

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Give the envelope back, claimable after ``delay`` seconds (only while this lease holds it)."""
        await self.database.write(partial(sql.requeue, app=self.app_name, uuid=delivery.envelope.uuid, receipt=delivery.receipt, delay=delay))

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the envelope to the dead letters (only while this lease holds it)."""
        await self.database.write(partial(sql.dead_letter, app=self.app_name, uuid=delivery.envelope.uuid, receipt=delivery.receipt, reason=reason), wakes=False)

    async def cancel(self, uuid: str) -> bool:
        """Drop a queued envelope that no worker holds."""
        return await self.database.write(partial(sql.cancel, app=self.app_name, uuid=uuid), wakes=False)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        rows = await self.database.read(partial(sql.dead_rows, app=self.app_name, limit=limit))
        return [
            DeadLetter(uuid=uuid, reason=reason, dead_at=dead_at, priority=priority, payload=payload, delivery_count=count)
            for uuid, reason, dead_at, priority, payload, count in rows
        ]

    async def requeue_dead(self, uuids: Sequence[str] | None = None) -> list[str]:
        """Queue dead letters again with fresh counts (all when ``uuids`` is None)."""
        chosen = None if uuids is None else set(uuids)
        return await self.database.write(partial(sql.requeue_dead, app=self.app_name, uuids=chosen))

    async def purge_dead(self) -> int:
        """Drop every dead letter."""
        return await self.database.write(partial(sql.delete_in_state, app=self.app_name, states=("dead",)), wakes=False)

    async def purge(self) -> int:
        """Drop every queued envelope (leased and dead ones stay)."""
        return await self.database.write(partial(sql.delete_in_state, app=self.app_name, states=("ready", "delayed")), wakes=False)

    async def depth(self) -> int:
        """Envelopes waiting to be claimed (ready and delayed)."""
        row = await self.database.read(lambda c: c.execute(
            "SELECT COUNT(*) FROM qtasks_queue WHERE app = ? AND state IN ('ready', 'delayed')", (self.app_name,)
        ).fetchone())
        return int(row[0])

    async def queue_counts(self) -> QueueCounts:
        """Count the queue's states in one read: a GROUP BY over an index."""
        ready: dict[int, int] = {}
        states = {"delayed": 0, "leased": 0, "dead": 0}
        for state, priority, count in await self.database.read(partial(sql.state_counts, app=self.app_name)):
            if state == "ready":
                ready[priority] = count
            else:
                states[state] += count
        return QueueCounts(ready=ready, **states)


@hookimpl(trylast=True)
def qtasks_make_broker(app: Any, url: str) -> SqliteBroker | None:
    """Serve ``sqlite://`` URLs."""
    database = database_for(app, url)
    return None if database is None else SqliteBroker(database, app.name, lease=app.config.task_lease)
