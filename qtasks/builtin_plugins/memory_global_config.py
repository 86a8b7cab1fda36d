"""``memory://`` global config: a per-process dict of named key/value maps."""

from __future__ import annotations

import fnmatch
from typing import Any

from qtasks.hookspecs import hookimpl
from qtasks.kernel.urls import scheme_of

__all__ = ["MemoryGlobalConfig", "qtasks_make_global_config"]


class MemoryGlobalConfig:
    """``set/get/get_all/get_match`` over a dict; shared by the tasks of one process."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def set(self, name: str, key: str, value: Any) -> None:
        """Write ``value`` under ``name``/``key``."""
        self._data.setdefault(name, {})[key] = value

    async def get(self, name: str, key: str) -> Any:
        """Read one value, or None."""
        return self._data.get(name, {}).get(key)

    async def get_all(self, name: str) -> dict[str, Any]:
        """Read every key under ``name``."""
        return dict(self._data.get(name, {}))

    async def get_match(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Read every name matching the glob ``pattern``."""
        return {n: dict(v) for n, v in self._data.items() if fnmatch.fnmatchcase(n, pattern)}


@hookimpl(trylast=True)
def qtasks_make_global_config(app: Any, url: str) -> MemoryGlobalConfig | None:
    """Serve ``memory://`` URLs."""
    return MemoryGlobalConfig() if scheme_of(url) == "memory" else None
