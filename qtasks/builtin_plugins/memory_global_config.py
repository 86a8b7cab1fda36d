"""``memory://`` global config: a per-process dict of named key/value maps."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from qtasks.hookspecs import hookimpl
from qtasks.kernel.global_config import same_value
from qtasks.kernel.urls import scheme_of

__all__ = ["MemoryGlobalConfig", "qtasks_make_global_config"]


class MemoryGlobalConfig:
    """The global config over a dict; shared by the tasks of one process.

    Every method runs without awaiting in between, so each one is atomic on its event loop.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def set(self, name: str, key: str, value: Any) -> None:
        """Write ``value`` under ``name``/``key``."""
        self._data.setdefault(name, {})[key] = value

    async def set_many(self, name: str, values: Mapping[str, Any]) -> None:
        """Write every key of ``values`` under ``name`` at once."""
        if values:
            self._data.setdefault(name, {}).update(values)

    async def get(self, name: str, key: str) -> Any:
        """Read one value, or None."""
        return self._data.get(name, {}).get(key)

    async def get_all(self, name: str) -> dict[str, Any]:
        """Read every key under ``name``."""
        return dict(self._data.get(name, {}))

    async def get_match(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Read every name matching the glob ``pattern``."""
        return {n: dict(v) for n, v in self._data.items() if fnmatch.fnmatchcase(n, pattern)}

    async def delete(self, name: str, key: str | None = None) -> None:
        """Remove ``name``/``key``, or the whole ``name`` when ``key`` is None."""
        if key is None:
            self._data.pop(name, None)
        else:
            self._remove(name, key)

    def _remove(self, name: str, key: str) -> None:
        entries = self._data.get(name)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del self._data[name]

    async def compare_and_swap(self, name: str, key: str, expected: Any, value: Any) -> Any:
        """Write ``value`` (None: remove the key) if ``name``/``key`` holds ``expected`` (None:
        absent); return the value held before."""
        before = self._data.get(name, {}).get(key)
        if same_value(before, expected):
            if value is None:
                self._remove(name, key)
            else:
                self._data.setdefault(name, {})[key] = value
        return before


@hookimpl(trylast=True)
def qtasks_make_global_config(app: Any, url: str) -> MemoryGlobalConfig | None:
    """Serve ``memory://`` URLs."""
    return MemoryGlobalConfig() if scheme_of(url) == "memory" else None
