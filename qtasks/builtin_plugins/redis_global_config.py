"""``redis://`` global config: one Redis hash per name, values as JSON, shared by every process."""

from __future__ import annotations

import json
from typing import Any

from qtasks.builtin_plugins.redis_server import RedisServer, server_for
from qtasks.errors import SerializationError
from qtasks.hookspecs import hookimpl

__all__ = ["RedisGlobalConfig", "qtasks_make_global_config"]


class RedisGlobalConfig:
    """``set/get/get_all/get_match`` over hashes ``qtasks:{app}:gc:<name>``.

    Args:
        server: The app's shared Redis connection.
    """

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._prefix = server.key("gc", "")

    async def start(self) -> None:
        """Open the shared connection."""
        await self.server.open()

    async def stop(self) -> None:
        """Close the shared connection (when nothing else uses it)."""
        await self.server.close()

    async def set(self, name: str, key: str, value: Any) -> None:
        """Write ``value`` (JSON) under ``name``/``key``."""
        try:
            encoded = json.dumps(value)
        except (TypeError, ValueError) as error:
            raise SerializationError(f"global config {name}/{key}: the value cannot be stored as JSON: {error}") from None
        client = self.server.client
        await self.server.call(lambda: client.hset(self._prefix + name, key, encoded))

    async def get(self, name: str, key: str) -> Any:
        """Read one value, or None."""
        client = self.server.client
        raw = await self.server.call(lambda: client.hget(self._prefix + name, key))
        return None if raw is None else json.loads(raw)

    async def get_all(self, name: str) -> dict[str, Any]:
        """Read every key under ``name``."""
        client = self.server.client
        raw = await self.server.call(lambda: client.hgetall(self._prefix + name))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def get_match(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Read every name matching the glob ``pattern``."""
        keys = await self.server.scan("gc:" + pattern)
        found = {}
        for key in keys:
            name = key.decode()[len(self._prefix):]
            found[name] = await self.get_all(name)
        return found


@hookimpl(trylast=True)
def qtasks_make_global_config(app: Any, url: str) -> RedisGlobalConfig | None:
    """Serve ``redis://``, ``rediss://`` and ``unix://`` URLs."""
    server = server_for(app, url)
    return None if server is None else RedisGlobalConfig(server)
