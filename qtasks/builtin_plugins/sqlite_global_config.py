"""``sqlite://`` global config: named key/value maps in the app's SQLite file, values as JSON."""

from __future__ import annotations

import fnmatch
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from qtasks.builtin_plugins.sqlite_database import SqliteDatabase, database_for
from qtasks.hookspecs import hookimpl
from qtasks.kernel.global_config import encode_value

__all__ = ["SqliteGlobalConfig", "qtasks_make_global_config"]

_UPSERT = "INSERT OR REPLACE INTO qtasks_config (app, name, key, value) VALUES (?, ?, ?, ?)"


class SqliteGlobalConfig:
    """The global config over the ``qtasks_config`` table, shared by every process on the file.

    Every write is one transaction of the database's writer (``BEGIN IMMEDIATE``: no other
    process writes meanwhile), so ``set_many`` and ``compare_and_swap`` are atomic.

    Args:
        database: The app's shared database file.
        app_name: The app's name; it keys every row.
    """

    def __init__(self, database: SqliteDatabase, app_name: str) -> None:
        self.database = database
        self.app_name = app_name

    async def start(self) -> None:
        """Open the shared database file."""
        await self.database.open()

    async def stop(self) -> None:
        """Close the shared database file (when nothing else uses it)."""
        await self.database.close()

    async def set(self, name: str, key: str, value: Any) -> None:
        """Write ``value`` (JSON) under ``name``/``key``."""
        await self.set_many(name, {key: value})

    async def set_many(self, name: str, values: Mapping[str, Any]) -> None:
        """Write every key of ``values`` under ``name`` in one transaction."""
        rows = [(self.app_name, name, key, encode_value(name, key, value)) for key, value in values.items()]
        if rows:
            await self.database.write(lambda c: c.executemany(_UPSERT, rows), wakes=False)

    async def get(self, name: str, key: str) -> Any:
        """Read one value, or None."""
        row = await self.database.read(lambda c: c.execute(
            "SELECT value FROM qtasks_config WHERE app = ? AND name = ? AND key = ?", (self.app_name, name, key)
        ).fetchone())
        return None if row is None else json.loads(row[0])

    async def get_all(self, name: str) -> dict[str, Any]:
        """Read every key under ``name``."""
        return (await self.get_match(name, glob=False)).get(name, {})

    async def get_match(self, pattern: str, glob: bool = True) -> dict[str, dict[str, Any]]:
        """Read every name matching the glob ``pattern`` (the same glob rules as ``fnmatch``)."""
        rows = await self.database.read(lambda c: c.execute(
            "SELECT name, key, value FROM qtasks_config WHERE app = ? ORDER BY name, key", (self.app_name,)
        ).fetchall() if glob else c.execute(
            "SELECT name, key, value FROM qtasks_config WHERE app = ? AND name = ? ORDER BY key", (self.app_name, pattern)
        ).fetchall())
        found: dict[str, dict[str, Any]] = {}
        for name, key, value in rows:
            if not glob or fnmatch.fnmatchcase(name, pattern):
                found.setdefault(name, {})[key] = json.loads(value)
        return found

    async def delete(self, name: str, key: str | None = None) -> None:
        """Remove ``name``/``key``, or every key under ``name`` when ``key`` is None."""
        if key is None:
            sql, params = "DELETE FROM qtasks_config WHERE app = ? AND name = ?", (self.app_name, name)
        else:
            sql, params = "DELETE FROM qtasks_config WHERE app = ? AND name = ? AND key = ?", (self.app_name, name, key)
        await self.database.write(lambda c: c.execute(sql, params), wakes=False)

    async def compare_and_swap(self, name: str, key: str, expected: Any, value: Any) -> Any:
        """Write ``value`` (None: remove the key) if ``name``/``key`` holds ``expected`` (None:
        absent), in one transaction; return the value held before."""
        wanted = None if expected is None else encode_value(name, key, expected)
        replacement = None if value is None else encode_value(name, key, value)

        def swap(connection: sqlite3.Connection) -> str | None:
            where = (self.app_name, name, key)
            row = connection.execute("SELECT value FROM qtasks_config WHERE app = ? AND name = ? AND key = ?", where).fetchone()
            current = None if row is None else row[0]
            if current == wanted or (wanted is None and current == "null"):
                if replacement is None:
                    connection.execute("DELETE FROM qtasks_config WHERE app = ? AND name = ? AND key = ?", where)
                else:
                    connection.execute(_UPSERT, (*where, replacement))
            return current

        before = await self.database.write(swap, wakes=False)
        return None if before is None else json.loads(before)


@hookimpl(trylast=True)
def qtasks_make_global_config(app: Any, url: str) -> SqliteGlobalConfig | None:
    """Serve ``sqlite://`` URLs."""
    database = database_for(app, url)
    return None if database is None else SqliteGlobalConfig(database, app.name)
