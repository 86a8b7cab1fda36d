"""One app's SQLite database file: URL checks, WAL connections kept off the event loop, clear errors."""

from __future__ import annotations

import logging
import os
import sqlite3
import weakref
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.to_thread

from qtasks.builtin_plugins.sqlite_watch import ChangeWatcher
from qtasks.errors import BrokerUnavailable, ConfigurationError
from qtasks.kernel.urls import scheme_of

__all__ = ["SqliteDatabase", "database_for", "path_of", "DEFAULT_FILE", "SCHEMA_VERSION"]

log = logging.getLogger("qtasks.sqlite")
T = TypeVar("T")
DEFAULT_FILE = "qtasks.sqlite3"
SCHEMA_VERSION = 1
FORM = "write sqlite:///relative/path.sqlite3 or sqlite:////absolute/path.sqlite3"
SYNCHRONOUS = ("normal", "full")
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


def path_of(url: str) -> tuple[str, str]:
    """Return the absolute file path and the ``synchronous`` mode of a ``sqlite://`` URL.

    ``sqlite://`` alone names ``qtasks.sqlite3`` in the working directory; ``sqlite:///x`` is
    relative to it, ``sqlite:////x`` absolute. ``?synchronous=full`` also survives power loss.
    """
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(f"broker URL {url!r} names a host ({parts.netloc!r}), but a SQLite database is a local file: {FORM}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if path in (":memory:", ""):
        if path:
            raise ConfigurationError(f"broker URL {url!r}: an in-memory SQLite database is not shared between processes; use memory:// for a one-process queue, or {FORM}")
        path = DEFAULT_FILE
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise ConfigurationError(f"broker URL {url!r}: unknown option(s) {', '.join(unknown)}; the only one is synchronous=normal|full")
    synchronous = options.get("synchronous", "normal").lower()
    if synchronous not in SYNCHRONOUS:
        raise ConfigurationError(f"broker URL {url!r}: synchronous={synchronous!r}; use synchronous=normal (the default) or synchronous=full")
    return os.path.abspath(os.path.expanduser(path)), synchronous


class SqliteDatabase:
    """The connections an app's SQLite components share: one writer, one reader, one watcher.

    Every call runs in a worker thread (``write`` and ``read`` each serialise their own
    connection), so the event loop never blocks on the file. Writes are transactions taken with
    ``BEGIN IMMEDIATE``; a file locked by another process for longer than ``timeout`` seconds
    raises ``BrokerUnavailable``. ``watcher`` wakes this process's waiters when any process
    commits.

    Args:
        url: The ``sqlite://`` URL.
        timeout: Seconds to wait for another process's lock (the app's ``broker_timeout``).
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.path, self.synchronous = path_of(url)
        self.timeout = timeout
        self.users = 0
        self.watcher = ChangeWatcher(self._connect)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(1)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        return connection

    def _open(self) -> None:
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise ConfigurationError(f"SQLite database {self.path}: the folder {folder} does not exist; create it or choose another path ({FORM})")
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
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        self._reader = self._connect()
        self._reader.execute("PRAGMA query_only=1")
        self.watcher.start()

    async def open(self) -> None:
        """Open the file (once for all the app's SQLite components), creating the tables."""
        self.users += 1
        if self._writer is None:
            try:
                await anyio.to_thread.run_sync(self._guarded, self._open)
            except BaseException:
                self.users -= 1
                raise
            log.debug("SQLite database %s open", self.path)

    async def close(self) -> None:
        """Close the connections once the last component using them stops."""
        self.users -= 1
        if self.users <= 0 and self._writer is not None:
            writer, reader, self._writer, self._reader = self._writer, self._reader, None, None
            self.watcher.stop()
            async with self._write_limiter, self._read_limiter:
                await anyio.to_thread.run_sync(_close_all, writer, reader)

    def _connection(self, which: sqlite3.Connection | None) -> sqlite3.Connection:
        if which is None:
            raise ConfigurationError(f"the SQLite database {self.path} is not open: start the app first (await app.start())")
        return which

    async def write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation(connection)`` in one ``BEGIN IMMEDIATE`` transaction, off the event loop,
        then wake this process's waiters."""
        connection = self._connection(self._writer)

        def transaction() -> T:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = operation(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        result = await anyio.to_thread.run_sync(self._guarded, transaction, limiter=self._write_limiter)
        self.watcher.touch()
        return result

    async def peek(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``operation`` on the writer's connection (ordered with this process's writes)."""
        connection = self._connection(self._writer)
        return await anyio.to_thread.run_sync(self._guarded, operation, connection, limiter=self._write_limiter)

    async def read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``operation`` on the reader's connection, off the event loop."""
        connection = self._connection(self._reader)
        return await anyio.to_thread.run_sync(self._guarded, operation, connection, limiter=self._read_limiter)

    def _guarded(self, operation: Callable[..., T], *args: Any) -> T:
        """Call ``operation``, turning SQLite's errors into ones that name the file and the fix."""
        try:
            return operation(*args)
        except sqlite3.OperationalError as error:
            text = str(error)
            if "locked" in text or "busy" in text:
                raise BrokerUnavailable(
                    f"SQLite database {self.path} stayed locked by another connection for {self.timeout:g}s ({text}); "
                    "a process may hold a long transaction on it: end that process, or raise broker_timeout"
                ) from None
            if "readonly" in text or "read-only" in text:
                raise ConfigurationError(
                    f"SQLite database {self.path} is read-only for this process ({text}): make the file and its folder "
                    f"writable (WAL mode writes {os.path.basename(self.path)}-wal and -shm beside it), or choose another path ({FORM})"
                ) from None
            if "unable to open" in text:
                raise ConfigurationError(f"cannot open SQLite database {self.path} ({text}): check that its folder exists and is writable, or choose another path ({FORM})") from None
            raise
        except sqlite3.DatabaseError as error:
            if "not a database" in str(error) or "malformed" in str(error):
                raise ConfigurationError(f"{self.path} is not a usable SQLite database ({error}); choose another path ({FORM})") from None
            raise


def _close_all(*connections: sqlite3.Connection | None) -> None:
    for connection in connections:
        if connection is not None:
            connection.close()


def database_for(app: Any, url: str) -> SqliteDatabase | None:
    """Return the app's shared :class:`SqliteDatabase` for ``url``, or None if it is not a SQLite URL."""
    if scheme_of(url) != "sqlite":
        return None
    databases = _DATABASES.setdefault(app, {})
    database = databases.get(url)
    if database is None:
        database = databases[url] = SqliteDatabase(url, app.config.broker_timeout)
    return database
