"""One app's Redis connection: URL checks, key names, scripts, and retries with a bounded wait."""

from __future__ import annotations

import logging
import time
import weakref
from urllib.parse import parse_qsl, urlsplit
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio

from qtasks.errors import BrokerUnavailable, ConfigurationError
from qtasks.kernel.urls import redact_url, scheme_of

__all__ = ["RedisServer", "server_for", "check_url", "REDIS_SCHEMES"]

log = logging.getLogger("qtasks.redis")
REDIS_SCHEMES = ("redis", "rediss", "unix")
T = TypeVar("T")
_SERVERS: weakref.WeakKeyDictionary[Any, dict[str, RedisServer]] = weakref.WeakKeyDictionary()


def check_url(url: str) -> None:
    """Reject a Redis URL with a bad port, database or socket path, naming the fix."""
    safe = redact_url(url)
    form = "write it as redis://[user:password@]host:port/db, rediss://... or unix:///path/to/socket?db=0"
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        raise ConfigurationError(f"broker URL {safe!r} has a port that is not a number; {form}") from None
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(f"broker URL {safe!r} names no socket path; {form}")
        database = dict(parse_qsl(parts.query)).get("db", "0")
    else:
        if not parts.hostname:
            raise ConfigurationError(f"broker URL {safe!r} names no host; {form}")
        database = parts.path.strip("/") or dict(parse_qsl(parts.query)).get("db", "0")
    if not database.isdigit():
        raise ConfigurationError(f"broker URL {safe!r}: database {database!r} is not a number; {form}")
    from redis.asyncio.connection import parse_url

    try:
        parse_url(url)
    except ValueError as error:
        raise ConfigurationError(f"broker URL {safe!r} is not a valid Redis URL ({error}); {form}") from None


def _redis() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError:  # pragma: no cover - redis is a dependency
        raise ConfigurationError("redis:// URLs need the redis package: pip install redis") from None
    return redis_asyncio


class RedisServer:
    """The connections, key prefix and scripts that an app's Redis components share.

    Calls go through ``call``, which retries lost connections with backoff, logs an outage once
    and raises ``BrokerUnavailable`` when the server has not answered for ``timeout`` seconds.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        app_name: The app's name; every key starts with ``qtasks:{app_name}:``.
        timeout: Seconds to keep retrying before ``BrokerUnavailable``.
    """

    def __init__(self, url: str, app_name: str, timeout: float = 10.0) -> None:
        check_url(url)
        if not app_name or "{" in app_name or "}" in app_name:
            raise ConfigurationError(f"app name {app_name!r} cannot be empty or hold '{{' or '}}' with a Redis broker: it is the keys' hash tag")
        self.url = url
        self.safe_url = redact_url(url)
        self.timeout = timeout
        self.prefix = f"qtasks:{{{app_name}}}:"
        self.client: Any = None
        self.blocking: Any = None
        self.users = 0
        self._scripts: dict[str, Any] = {}
        self._down_since: float | None = None

    def key(self, *parts: str) -> str:
        """Return the full key name of ``parts`` under this app's prefix."""
        return self.prefix + ":".join(parts)

    def _connect(self, socket_timeout: float | None) -> Any:
        redis_asyncio = _redis()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        try:
            client = redis_asyncio.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        except ValueError as error:
            raise ConfigurationError(f"broker URL {self.safe_url!r} is not a valid Redis URL ({error}); write it as redis://[:password@]host:port/db, rediss://... or unix:///path/to/socket?db=0") from None
        # QTasks owns the timeouts (a URL's query would otherwise win): reads wait for broker_timeout,
        # except on the blocking client, and a connection attempt takes at most a second.
        client.connection_pool.connection_kwargs.update(socket_timeout=socket_timeout, socket_connect_timeout=min(self.timeout, 1.0))
        return client

    async def open(self) -> None:
        """Open the clients (once for all the app's Redis components)."""
        self.users += 1
        if self.client is None:
            self.client = self._connect(self.timeout)
            self.blocking = self._connect(None)  # BLPOP waits longer than any socket timeout

    async def close(self) -> None:
        """Close the clients once the last component using them stops."""
        self.users -= 1
        if self.users <= 0 and self.client is not None:
            client, blocking, self.client, self.blocking = self.client, self.blocking, None, None
            self._scripts.clear()
            await client.aclose()
            await blocking.aclose()

    async def scan(self, pattern: str) -> list[bytes]:
        """Return the keys ``<prefix><pattern>`` (``pattern`` a glob; the prefix is matched as is)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        client = self.client

        async def collect() -> list[bytes]:
            return [key async for key in client.scan_iter(match=escaped + pattern, count=1000)]

        return await self.call(collect)

    def script(self, name: str, source: str) -> Any:
        """Return the registered script ``name`` (loaded again by redis-py after NOSCRIPT)."""
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(source)
        return script

    async def run(self, name: str, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script through ``call``."""
        script = self.script(name, source)
        return await self.call(lambda: script(keys=keys, args=args))

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Await ``operation()``, retrying connection failures with backoff for ``timeout`` seconds.

        Raises:
            BrokerUnavailable: the server did not answer in time.
        """
        if self.client is None:
            raise ConfigurationError(f"the Redis connection to {self.safe_url} is not open: start the app first (await app.start())")
        from redis.exceptions import AuthenticationError, AuthorizationError
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        deadline: float | None = None
        delay = 0.02
        while True:
            try:
                result = await operation()
            except (AuthenticationError, AuthorizationError) as error:
                raise ConfigurationError(f"Redis at {self.safe_url} refused the credentials ({error}); check the user and password in the URL") from None
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                clock = time.monotonic()
                if deadline is None:
                    deadline = clock + self.timeout
                    self._outage(error)
                if clock >= deadline:
                    raise BrokerUnavailable(
                        f"Redis at {self.safe_url} did not answer for {self.timeout:g}s ({type(error).__name__}: {error}); "
                        "check that the server runs and the URL (broker_url / QTASKS_BROKER_URL) is right, or raise broker_timeout"
                    ) from None
                await anyio.sleep(min(delay, deadline - clock))
                delay = min(delay * 2, 1.0)
            else:
                if self._down_since is not None:
                    log.warning("Redis at %s answers again after %.1fs", self.safe_url, time.monotonic() - self._down_since)
                    self._down_since = None
                return result

    def _outage(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("Redis at %s is unreachable (%s: %s); retrying with backoff", self.safe_url, type(error).__name__, error)


def server_for(app: Any, url: str) -> RedisServer | None:
    """Return the app's shared :class:`RedisServer` for ``url``, or None if it is not a Redis URL."""
    if scheme_of(url) not in REDIS_SCHEMES:
        return None
    servers = _SERVERS.setdefault(app, {})
    server = servers.get(url)
    if server is None:
        server = servers[url] = RedisServer(url, app.name, app.config.broker_timeout)
    return server
