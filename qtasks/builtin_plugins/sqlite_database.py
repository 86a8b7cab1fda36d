"""One app's SQLite database file: URL checks, WAL connections kept off the event loop, clear errors."""

from __future__ import annotations

import logging
import os
import sqlite3
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from qtasks.builtin_plugins.sqlite_batch import WriteQueue, retry_locked
from qtasks.builtin_plugins.sqlite_thread import ConnectionThread
from qtasks.builtin_plugins.sqlite_url import FORM, path_of
from qtasks.builtin_plugins.sqlite_watch import ChangeWatcher
from qtasks.errors import BrokerUnavailable, ConfigurationError
from qtasks.kernel.urls import scheme_of

__all__ = ["SqliteDatabase", "database_for", "SCHEMA_VERSION"]

log = logging.getLogger("qtasks.sqlite")
T = TypeVar("T")
SCHEMA_VERSION = 1
CHECKPOINT_EVERY = 64  # transactions of this process between two looks at the WAL's size
CHECKPOINT_BYTES = 4 * 1024 * 1024  # the WAL size that starts a checkpoint (SQLite's own default: 1,000 pages)
_DATABASES: weakref.WeakKeyDictionary[Any, dict[str, SqliteDatabase]] = weakref.WeakKeyDictionary()

SCHEMA = """
CREATE TABLE IF NOT EXISTS qtasks_queue (
    app TEXT NOT NULL, uuid TEXT NOT NULL, priority INTEGER NOT NULL, seq INTEGER NOT NULL,
    state TEXT NOT NULL, due REAL NOT NULL DEFAULT 0, payload BLOB NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0,
    receipt INTEGER, worker TEXT, reason TEXT,
    PRIMARY KEY (app, uuid)
);
CREATE INDEX IF NOT EXISTS qtasks_queue_ready ON qtasks_queue (app, state, priority, seq);
CREATE INDEX IF NOT EXISTS qtasks_queue_due ON qtasks_queue (app, state, due);
CREATE TABLE IF NOT EXISTS qtasks_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS qtasks_records (
    app TEXT NOT NULL, uuid TEXT NOT NULL, final INTEGER NOT NULL, expires REAL, record BLOB NOT NULL,
    PRIMARY KEY (app, uuid)
);
CREATE INDEX IF NOT EXISTS qtasks_records_expires ON qtasks_records (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS qtasks_workers (
    app TEXT NOT NULL, worker_id TEXT NOT NULL, seen_at REAL NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY (app, worker_id)
);
CREATE TABLE IF NOT EXISTS qtasks_config (
    app TEXT NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (app, name, key)
);
"""


class SqliteDatabase:
    """The connections an app's SQLite components share: one writer, one reader, one watcher.

    The writer's and the reader's connections each live in a thread of their own
    (``ConnectionThread``), so the event loop never blocks on the file. Writes go through a
    ``WriteQueue``: each is one savepoint of a ``BEGIN IMMEDIATE`` transaction, and
    writes queued while a transaction runs share the next one. A file locked by another process
    for longer than ``timeout`` seconds raises ``BrokerUnavailable``. ``watcher`` wakes this
    process's waiters when any process commits.

    Args:
        url: The ``sqlite://`` URL.
        timeout: Seconds to wait for another process's lock (the app's ``broker_timeout``).
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.path, self.synchronous = path_of(url)
        self.timeout = timeout
        self.users = 0
        self.watcher = ChangeWatcher(lambda: retry_locked(self._connect, self.timeout), self.path + "-wal")
        self._writer = ConnectionThread("qtasks-sqlite-writer")
        self._reader = ConnectionThread("qtasks-sqlite-reader")
        self._checkpointer = ConnectionThread("qtasks-sqlite-checkpoint")
        self.writes = WriteQueue(self._writer.send, self._ready, timeout, self.explain, self._committed)
        self._commits = 0
        self._checkpointing = False

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        return connection

    def _open_writer(self) -> sqlite3.Connection:
        """Check the folder, then switch to WAL and create or check the tables (retried while
        another process does the same); return the writer's connection."""
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise ConfigurationError(f"SQLite database {self.path}: the folder {folder} does not exist; create it or choose another path ({FORM})")
        return retry_locked(self._prepare_writer, self.timeout)

    def _prepare_writer(self) -> sqlite3.Connection:
        writer = self._connect()
        try:
            mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise ConfigurationError(f"SQLite database {self.path} cannot use WAL mode (it stays {mode!r}); put it on a local disk")
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigurationError(f"SQLite database {self.path} was made by a newer QTasks (schema {version}); upgrade QTasks or choose another path")
            if version < SCHEMA_VERSION:
                writer.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            writer.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on their own thread, not after a commit
            writer.execute("PRAGMA busy_timeout=0")  # the write queue retries a locked file itself, more finely
        except BaseException:
            writer.close()
            raise
        return writer

    def _open_reader(self) -> sqlite3.Connection:
        reader = retry_locked(self._connect, self.timeout)
        reader.execute("PRAGMA query_only=1")
        return reader

    async def open(self) -> None:
        """Open the file (once for all the app's SQLite components), creating the tables."""
        self.users += 1
        if self._writer.running:
            return
        try:
            await self._writer.start(lambda: self._guarded(self._open_writer))
            await self._reader.start(lambda: self._guarded(self._open_reader))
            await self._checkpointer.start(lambda: self._guarded(retry_locked, self._connect, self.timeout))
            await self.watcher.start()
        except BaseException:
            self.users -= 1
            for thread in self._threads():
                await thread.stop()
            raise
        log.debug("SQLite database %s open (wake-ups: %s)", self.path, self.watcher.mode)

    async def close(self) -> None:
        """Close the connections once the last component using them stops."""
        self.users -= 1
        if self.users <= 0 and self._writer.running:
            await self.writes.drain()
            await self.watcher.stop()
            for thread in self._threads():
                await thread.stop()

    def _threads(self) -> tuple[ConnectionThread, ...]:
        return self._writer, self._reader, self._checkpointer

    def _committed(self, wakes: bool) -> None:
        """After each transaction: wake this process's waiters if it asked to; now and then,
        check the WAL's size."""
        if wakes:
            self.watcher.touch()
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and not self._checkpointing and self._checkpointer.running:
            self._commits, self._checkpointing = 0, True
            self._checkpointer.send(self._checkpoint, self._checkpointed)

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        """Copy the WAL back into the file once it holds ``CHECKPOINT_BYTES`` (PASSIVE: writers
        go on meanwhile). On its own thread, so that its fsyncs never hold up a write."""
        if os.path.getsize(self.path + "-wal") >= CHECKPOINT_BYTES:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpointed(self, ok: bool, error: Any) -> None:
        self._checkpointing = False
        if not ok:
            log.debug("checkpoint of %s failed: %s", self.path, error)

    def _ready(self) -> None:
        if not self._writer.running:
            raise ConfigurationError(f"the SQLite database {self.path} is not open: start the app first (await app.start())")

    async def write(self, operation: Callable[[sqlite3.Connection], T], wakes: bool = True) -> T:
        """Run ``operation(connection)`` in a transaction (maybe shared with other writes of this
        process, each in its own savepoint), on the writer's thread. ``wakes``: whether to wake
        this process's waiters after it (a write that can make a task claimable); acks, records
        and heartbeats pass False, since nobody here waits for them (final records reach their
        waiters directly)."""
        return await self.writes.submit(operation, wakes)

    async def read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``operation(connection)`` on the reader's thread."""
        self._ready()
        return await self._reader.call(partial(self._guarded, operation))

    def _guarded(self, operation: Callable[..., T], *args: Any) -> T:
        """Call ``operation``, raising SQLite's errors as ones that name the file and the fix."""
        try:
            return operation(*args)
        except sqlite3.Error as error:
            raise self.explain(error) from None

    def explain(self, error: BaseException) -> BaseException:
        """Return the error to raise for ``error``: SQLite's own ones name the file and the fix."""
        text = str(error)
        if isinstance(error, sqlite3.OperationalError):
            if "locked" in text or "busy" in text:
                return BrokerUnavailable(
                    f"SQLite database {self.path} stayed locked by another connection for {self.timeout:g}s ({text}); "
                    "a process may hold a long transaction on it: end that process, or raise broker_timeout"
                )
            if "readonly" in text or "read-only" in text:
                return ConfigurationError(
                    f"SQLite database {self.path} is read-only for this process ({text}): make the file and its folder "
                    f"writable (WAL mode writes {os.path.basename(self.path)}-wal and -shm beside it), or choose another path ({FORM})"
                )
            if "unable to open" in text:
                return ConfigurationError(f"cannot open SQLite database {self.path} ({text}): check that its folder exists and is writable, or choose another path ({FORM})")
        if isinstance(error, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return ConfigurationError(f"{self.path} is not a usable SQLite database ({text}); choose another path ({FORM})")
        return error


def database_for(app: Any, url: str) -> SqliteDatabase | None:
    """Return the app's shared :class:`SqliteDatabase` for ``url``, or None if it is not a SQLite URL."""
    if scheme_of(url) != "sqlite":
        return None
    databases = _DATABASES.setdefault(app, {})
    database = databases.get(url)
    if database is None:
        database = databases[url] = SqliteDatabase(url, app.config.broker_timeout)
    return database
