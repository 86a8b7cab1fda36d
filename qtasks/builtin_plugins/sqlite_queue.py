"""The SQL of the SQLite queue: functions of a connection, each run inside one transaction.

A row of ``qtasks_queue`` is one envelope of one app, in one ``state``: ``ready`` (claimable,
ordered by ``priority`` then ``seq``), ``delayed`` (claimable from ``due``), ``leased`` (held
until ``due`` by the claim whose ``receipt`` it carries) or ``dead`` (since ``due``, with its
``reason``). Acked and cancelled envelopes are deleted. Times are seconds since the epoch.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "next_numbers", "insert_envelopes", "claimable", "claim", "next_due", "renew", "ack", "requeue", "dead_letter",
    "cancel", "dead_rows", "requeue_dead", "delete_in_state", "store_if_leased", "state_counts",
]

Row = tuple[Any, ...]
LEASED = "app = ? AND uuid = ? AND state = 'leased' AND receipt = ?"


def next_numbers(connection: sqlite3.Connection, count: int) -> int:
    """Reserve ``count`` numbers of the file's counter (order and receipts); return the first."""
    row = connection.execute(
        "INSERT INTO qtasks_counter (name, value) VALUES ('seq', ?) ON CONFLICT (name) DO UPDATE SET value = value + ? "
        "RETURNING value", (count, count)
    ).fetchone()
    return int(row[0]) - count + 1


def insert_envelopes(connection: sqlite3.Connection, app: str, envelopes: Sequence[Any]) -> list[bool]:
    """Queue envelopes (``due`` from ``not_before``); return for each whether it was new (a known uuid is skipped)."""
    first = next_numbers(connection, len(envelopes))
    clock = time.time()
    added = []
    for offset, envelope in enumerate(envelopes):
        state = "delayed" if envelope.not_before > clock else "ready"
        cursor = connection.execute(
            "INSERT OR IGNORE INTO qtasks_queue (app, uuid, priority, seq, state, due, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (app, envelope.uuid, envelope.priority, first + offset, state, envelope.not_before if state == "delayed" else 0.0, envelope.payload),
        )
        added.append(cursor.rowcount == 1)
    return added


def next_due(connection: sqlite3.Connection, app: str) -> float | None:
    """When the next delayed envelope becomes ready or the next lease runs out (None: never)."""
    row = connection.execute("SELECT MIN(due) FROM qtasks_queue WHERE app = ? AND state IN ('delayed', 'leased')", (app,)).fetchone()
    return row[0]


def claimable(connection: sqlite3.Connection, app: str) -> tuple[bool, float | None]:
    """Whether a claim now would find something (read only), and the next due time."""
    ready = connection.execute("SELECT 1 FROM qtasks_queue WHERE app = ? AND state = 'ready' LIMIT 1", (app,)).fetchone()
    due = next_due(connection, app)
    return ready is not None or (due is not None and due <= time.time()), due


def claim(connection: sqlite3.Connection, app: str, worker_id: str, max_count: int, lease: float) -> tuple[list[Row], float | None]:
    """Promote due delayed envelopes, put back expired leases (``lost`` + 1), then lease up to
    ``max_count`` ready envelopes; return ``(uuid, priority, payload, deliveries, lost, receipt)``
    rows, and the next due time when there are none."""
    clock = time.time()
    connection.execute("UPDATE qtasks_queue SET state = 'ready', due = 0 WHERE app = ? AND state = 'delayed' AND due <= ?", (app, clock))
    connection.execute(
        "UPDATE qtasks_queue SET state = 'ready', due = 0, lost = lost + 1, receipt = NULL, worker = NULL "
        "WHERE app = ? AND state = 'leased' AND due <= ?", (app, clock)
    )
    rows = connection.execute(
        "SELECT uuid, priority, payload, deliveries, lost FROM qtasks_queue WHERE app = ? AND state = 'ready' "
        "ORDER BY priority, seq LIMIT ?", (app, max_count)
    ).fetchall()
    if not rows:
        return [], next_due(connection, app)
    first = next_numbers(connection, len(rows))
    leased = [(*row[:3], row[3] + 1, row[4], first + i) for i, row in enumerate(rows)]
    connection.executemany(
        "UPDATE qtasks_queue SET state = 'leased', due = ?, deliveries = deliveries + 1, receipt = ?, worker = ? WHERE app = ? AND uuid = ?",
        [(clock + lease, row[5], worker_id, app, row[0]) for row in leased],
    )
    return leased, None


def renew(connection: sqlite3.Connection, app: str, leases: Sequence[tuple[str, int]], lease: float) -> None:
    """Push back the deadline of each ``(uuid, receipt)`` lease that is still held."""
    deadline = time.time() + lease
    connection.executemany(f"UPDATE qtasks_queue SET due = ? WHERE {LEASED}", [(deadline, app, uuid, receipt) for uuid, receipt in leases])


def ack(connection: sqlite3.Connection, app: str, uuid: str, receipt: int) -> bool:
    """Delete the envelope while this lease holds it; return whether it did."""
    return connection.execute(f"DELETE FROM qtasks_queue WHERE {LEASED}", (app, uuid, receipt)).rowcount == 1


def requeue(connection: sqlite3.Connection, app: str, uuid: str, receipt: int, delay: float) -> bool:
    """Give the envelope back (delayed by ``delay`` seconds) while this lease holds it."""
    state, due = ("delayed", time.time() + delay) if delay > 0 else ("ready", 0.0)
    cursor = connection.execute(
        f"UPDATE qtasks_queue SET state = ?, due = ?, receipt = NULL, worker = NULL WHERE {LEASED}", (state, due, app, uuid, receipt)
    )
    return cursor.rowcount == 1


def dead_letter(connection: sqlite3.Connection, app: str, uuid: str, receipt: int, reason: str) -> bool:
    """Move the envelope to the dead letters while this lease holds it."""
    cursor = connection.execute(
        f"UPDATE qtasks_queue SET state = 'dead', due = ?, reason = ?, receipt = NULL, worker = NULL WHERE {LEASED}",
        (time.time(), reason, app, uuid, receipt),
    )
    return cursor.rowcount == 1


def cancel(connection: sqlite3.Connection, app: str, uuid: str) -> bool:
    """Delete a queued envelope that no claim holds."""
    cursor = connection.execute("DELETE FROM qtasks_queue WHERE app = ? AND uuid = ? AND state IN ('ready', 'delayed')", (app, uuid))
    return cursor.rowcount == 1


def dead_rows(connection: sqlite3.Connection, app: str, limit: int) -> list[Row]:
    """The oldest ``limit`` dead letters as ``(uuid, reason, dead_at, priority, payload, deliveries)``."""
    return connection.execute(
        "SELECT uuid, reason, due, priority, payload, deliveries FROM qtasks_queue WHERE app = ? AND state = 'dead' "
        "ORDER BY due, seq LIMIT ?", (app, limit)
    ).fetchall()


def requeue_dead(connection: sqlite3.Connection, app: str, uuids: Sequence[str] | None) -> list[str]:
    """Make dead letters ready again with fresh counts, at the back of their priority, oldest first."""
    chosen = [row[0] for row in connection.execute(
        "SELECT uuid FROM qtasks_queue WHERE app = ? AND state = 'dead' ORDER BY due, seq", (app,)
    ) if uuids is None or row[0] in uuids]
    if chosen:
        first = next_numbers(connection, len(chosen))
        connection.executemany(
            "UPDATE qtasks_queue SET state = 'ready', due = 0, seq = ?, deliveries = 0, lost = 0, reason = NULL WHERE app = ? AND uuid = ?",
            [(first + i, app, uuid) for i, uuid in enumerate(chosen)],
        )
    return chosen


def delete_in_state(connection: sqlite3.Connection, app: str, states: Sequence[str]) -> int:
    """Delete the app's envelopes in ``states``; return how many."""
    marks = ", ".join("?" for _ in states)
    return connection.execute(f"DELETE FROM qtasks_queue WHERE app = ? AND state IN ({marks})", (app, *states)).rowcount


def store_if_leased(connection: sqlite3.Connection, app: str, rows: Sequence[Row]) -> None:
    """Store ``(app, uuid, final, expires, record)`` record rows of tasks still leased (a task that
    ended or went back meanwhile keeps the record its step stored)."""
    connection.executemany(
        "INSERT OR REPLACE INTO qtasks_records (app, uuid, final, expires, record) SELECT ?, ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM qtasks_queue WHERE app = ? AND uuid = ? AND state = 'leased')",
        [(*row, app, row[1]) for row in rows],
    )


def state_counts(connection: sqlite3.Connection, app: str) -> list[Row]:
    """``(state, priority, count)`` rows of the app's envelopes: one pass over the
    ``(app, state, priority, seq)`` index, not the table."""
    return connection.execute(
        "SELECT state, priority, COUNT(*) FROM qtasks_queue WHERE app = ? GROUP BY state, priority", (app,)
    ).fetchall()
