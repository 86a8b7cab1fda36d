"""``app.global_config``: the global config component behind the global-config hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtasks.kernel.model import ConfigEntry

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["GlobalConfigFacade"]


class GlobalConfigFacade:
    """The original ``set/get/get_all/get_match`` API, firing the global-config hooks.

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
        entry = ConfigEntry(name=name, key=key, value=value)
        entry = await self._app.dispatcher.pipe("qtasks_global_config_set", app=self._app, entry=entry)
        await self.component.set(entry.name, entry.key, entry.value)

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
