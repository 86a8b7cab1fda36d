"""``sqlite://`` global config: named key/value maps in the app's SQLite file, values as JSON."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from qtasks.builtin_plugins.sqlite_database import SqliteDatabase, database_for
from qtasks.errors import SerializationError
from qtasks.hookspecs import hookimpl

__all__ = ["SqliteGlobalConfig", "qtasks_make_global_config"]


class SqliteGlobalConfig:
    """``set/get/get_all/get_match`` over the ``qtasks_config`` table, shared by every process on the file.

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
        try:
            encoded = json.dumps(value)
        except (TypeError, ValueError) as error:
            raise SerializationError(f"global config {name}/{key}: the value cannot be stored as JSON: {error}") from None
        await self.database.write(lambda c: c.execute(
            "INSERT OR REPLACE INTO qtasks_config (app, name, key, value) VALUES (?, ?, ?, ?)", (self.app_name, name, key, encoded)
        ), wakes=False)

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


@hookimpl(trylast=True)
def qtasks_make_global_config(app: Any, url: str) -> SqliteGlobalConfig | None:
    """Serve ``sqlite://`` URLs."""
    database = database_for(app, url)
    return None if database is None else SqliteGlobalConfig(database, app.name)
