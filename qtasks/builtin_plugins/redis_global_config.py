"""``redis://`` global config: one Redis hash per name, values as JSON, shared by every process."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qtasks.builtin_plugins.redis_server import RedisServer, server_for
from qtasks.hookspecs import hookimpl
from qtasks.kernel.global_config import encode_value

__all__ = ["RedisGlobalConfig", "qtasks_make_global_config", "COMPARE_AND_SWAP"]

# KEYS[1] the name's hash; ARGV: key, expected JSON ('' for absent), new JSON ('' to remove).
# Returns the JSON held before (nil when absent). A stored JSON null counts as absent.
COMPARE_AND_SWAP = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local matches
if ARGV[2] == '' then
  matches = (not current) or current == 'null'
else
  matches = current == ARGV[2]
end
if matches then
  if ARGV[3] == '' then
    redis.call('HDEL', KEYS[1], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  end
end
return current
"""


class RedisGlobalConfig:
    """The global config over hashes ``qtasks:{app}:gc:<name>`` (key → JSON value).

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
        encoded = encode_value(name, key, value)
        client = self.server.client
        await self.server.call(lambda: client.hset(self._prefix + name, key, encoded))

    async def set_many(self, name: str, values: Mapping[str, Any]) -> None:
        """Write every key of ``values`` under ``name`` in one ``HSET``."""
        encoded = {key: encode_value(name, key, value) for key, value in values.items()}
        if encoded:
            client = self.server.client
            await self.server.call(lambda: client.hset(self._prefix + name, mapping=encoded))

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

    async def delete(self, name: str, key: str | None = None) -> None:
        """Remove ``name``/``key``, or the name's whole hash when ``key`` is None."""
        client = self.server.client
        if key is None:
            await self.server.call(lambda: client.delete(self._prefix + name))
        else:
            await self.server.call(lambda: client.hdel(self._prefix + name, key))

    async def compare_and_swap(self, name: str, key: str, expected: Any, value: Any) -> Any:
        """Write ``value`` (None: remove the key) if ``name``/``key`` holds ``expected`` (None:
        absent), in one Lua script; return the value held before."""
        wanted = "" if expected is None else encode_value(name, key, expected)
        replacement = "" if value is None else encode_value(name, key, value)
        raw = await self.server.run("gc_compare_and_swap", COMPARE_AND_SWAP, [self._prefix + name], [key, wanted, replacement])
        return None if raw is None else json.loads(raw)


@hookimpl(trylast=True)
def qtasks_make_global_config(app: Any, url: str) -> RedisGlobalConfig | None:
    """Serve ``redis://``, ``rediss://`` and ``unix://`` URLs."""
    server = server_for(app, url)
    return None if server is None else RedisGlobalConfig(server)
