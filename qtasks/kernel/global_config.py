"""``app.global_config``: the global config component behind the global-config hooks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qtasks.errors import SerializationError
from qtasks.kernel.model import ConfigEntry

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["GlobalConfigFacade", "encode_value", "same_value"]


def encode_value(name: str, key: str, value: Any) -> str:
    """Return the JSON text a shared global config stores for ``value`` (and compares it by).

    Raises:
        SerializationError: ``value`` is not JSON, naming ``name``/``key`` and the fix.
    """
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise SerializationError(
            f"global config {name}/{key}: the value cannot be stored as JSON ({error}); store str, int, float, bool, None, "
            "or lists and dicts of them"
        ) from None


def same_value(stored: Any, expected: Any) -> bool:
    """Whether ``stored`` equals ``expected`` as ``compare_and_swap`` sees it: by JSON encoding
    (plain equality for values JSON cannot encode); None matches None, i.e. an absent key."""
    try:
        return json.dumps(stored) == json.dumps(expected)
    except (TypeError, ValueError):
        return bool(stored == expected)


class GlobalConfigFacade:
    """The original ``set/get/get_all/get_match`` API, firing the global-config hooks, plus
    ``set_many``, ``delete`` and ``compare_and_swap``.

    Args:
        app: The app whose component and hooks are used.
    """

    def __init__(self, app: AsyncQueueTasks) -> None:
        self._app = app

    @property
    def component(self) -> Any:
        """The global config component itself."""
        return self._app.components.get("global_config")

    async def set(self, name: str, key: str, value: Any) -> None:
        """Write ``value`` under ``name``/``key``; ``qtasks_global_config_set`` may change the entry."""
        await self._app.start()
        entry = await self._entry(name, key, value)
        await self.component.set(entry.name, entry.key, entry.value)

    async def _entry(self, name: str, key: str, value: Any) -> ConfigEntry:
        entry = ConfigEntry(name=name, key=key, value=value)
        return await self._app.dispatcher.pipe("qtasks_global_config_set", app=self._app, entry=entry)

    async def set_many(self, name: str, values: Mapping[str, Any]) -> None:
        """Write every key of ``values`` under ``name`` in one atomic step. Each entry goes through
        ``qtasks_global_config_set``; entries a plugin moves to another name are written there,
        one atomic step per name."""
        await self._app.start()
        by_name: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            entry = await self._entry(name, key, value)
            by_name.setdefault(entry.name, {})[entry.key] = entry.value
        for target, entries in by_name.items():
            await self.component.set_many(target, entries)

    async def delete(self, name: str, key: str | None = None) -> None:
        """Remove ``name``/``key``, or every key under ``name`` when ``key`` is None (no hook fires)."""
        await self._app.start()
        await self.component.delete(name, key)

    async def compare_and_swap(self, name: str, key: str, expected: Any, value: Any) -> Any:
        """Atomically write ``value`` if ``name``/``key`` holds ``expected``; return the value held
        before. None as ``expected`` means absent, None as ``value`` removes the key. No hook
        fires: a pipe that changed the value would break the comparison."""
        await self._app.start()
        return await self.component.compare_and_swap(name, key, expected, value)

    async def _read(self, name: str, key: str | None, value: Any) -> Any:
        return await self._app.dispatcher.pipe("qtasks_global_config_read", app=self._app, name=name, key=key, value=value)

    async def get(self, key: str, name: str) -> Any:
        """Read ``name``/``key`` (the original argument order: key first)."""
        await self._app.start()
        return await self._read(name, key, await self.component.get(name, key))

    async def get_all(self, key: str) -> dict[str, Any]:
        """Read every key under the name ``key``."""
        await self._app.start()
        return await self._read(key, None, await self.component.get_all(key))

    async def get_match(self, match: str) -> dict[str, dict[str, Any]]:
        """Read every name matching the glob ``match``."""
        await self._app.start()
        return await self._read(match, None, await self.component.get_match(match))
