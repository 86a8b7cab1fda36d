"""Pushed results: waiters subscribe to their task's channel and wake when its final record is published."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from qtasks.builtin_plugins.redis_server import RedisServer

__all__ = ["ResultWaiter"]

log = logging.getLogger("qtasks.redis")
RECHECK_EVERY = 1.0  # seconds between re-reads of a record whose push may have been lost


class _Channel:
    """One subscribed channel: how many wait on it, whether Redis confirmed it, what arrived."""

    def __init__(self) -> None:
        self.waiters = 0
        self.confirmed = anyio.Event()
        self.changed = anyio.Event()
        self.payload: bytes | None = None

    def poke(self, payload: bytes | None = None) -> None:
        """Wake the waiters (with the published record, or None to make them read it again)."""
        if payload is not None:
            self.payload = payload
        self.changed.set()
        self.changed = anyio.Event()


class ResultWaiter:
    """Shares one pub/sub connection between every waiter of an app, with one reader task.

    A waiter subscribes to ``done:<uuid>``, waits for Redis to confirm, then reads the record:
    a task that ended before the subscription is seen by that read, one that ends after is
    pushed. After a lost connection the reader subscribes again and makes every waiter re-read;
    as a safety net for a connection lost without an error (a server restart under a blocked
    read), a waiter that has no confirmation or no push also re-reads its record every
    ``RECHECK_EVERY`` seconds.

    Args:
        server: The app's shared Redis connection.
    """

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._channels: dict[bytes, _Channel] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._recovering = False
        self._idle = anyio.Event()  # set when the reader, idle with no subscription, should read again

    def channel_name(self, uuid: str) -> str:
        """The channel a task's final record is published on."""
        return self.server.key("done", uuid)

    async def wait(self, uuid: str, timeout: float, read: Callable[[], Awaitable[bytes | None]], final: Callable[[bytes], bool]) -> bytes | None:
        """Return the task's final record (as stored bytes); None after ``timeout`` seconds, or at
        once when no record is stored.

        Args:
            uuid: The task id.
            timeout: Seconds to wait.
            read: Reads the stored record.
            final: Tells whether a stored record has a final status.
        """
        name = self.channel_name(uuid).encode()
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel()
        channel.waiters += 1
        try:
            with anyio.move_on_after(timeout):
                await self._subscribe(name, channel)
                while True:
                    changed = channel.changed
                    if channel.payload is not None:
                        return channel.payload
                    with anyio.move_on_after(RECHECK_EVERY):
                        await channel.confirmed.wait()
                    if not channel.confirmed.is_set():
                        await self._recover()
                    stored = await read()
                    if stored is None or final(stored):
                        return stored  # None: expired meanwhile, nothing to wait for
                    with anyio.move_on_after(RECHECK_EVERY):  # a pushed record wakes it at once; the
                        await changed.wait()  # re-read covers a pub/sub connection lost unnoticed
            return None
        finally:
            channel.waiters -= 1
            if channel.waiters == 0:
                del self._channels[name]
                if self._pubsub is not None:
                    await self._quietly(self._pubsub.unsubscribe(name))

    async def _subscribe(self, name: bytes, channel: _Channel) -> None:
        if self._pubsub is None:
            self._pubsub = self.server.client.pubsub()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())
        if channel.waiters == 1:
            await self.server.call(lambda: self._pubsub.subscribe(name))
            self._idle.set()

    async def _quietly(self, operation: Awaitable[Any]) -> None:
        try:
            await operation
        except Exception as error:  # the reader resubscribes what is still wanted
            log.debug("pub/sub command failed: %s", error)

    async def _read(self) -> None:
        delay = 0.02
        while True:
            try:
                if not self._pubsub.subscribed:
                    self._idle = anyio.Event()
                    await self._idle.wait()
                    continue
                message = await self._pubsub.get_message(timeout=None)
                delay = 0.02
            except asyncio.CancelledError:
                raise
            except Exception as error:  # connection lost: subscribe again, then make waiters re-read
                self.server._outage(error)
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
                await self._resubscribe()
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = self._channels.get(message["channel"])
        if channel is None:
            return
        if message["type"] == "subscribe":
            channel.confirmed.set()
            channel.poke()
        elif message["type"] == "message":
            channel.poke(message["data"])

    async def _recover(self) -> None:
        """Replace a reader stuck on a connection that died without an error (once at a time)."""
        if self._recovering:
            return
        self._recovering = True
        try:
            log.warning("no pub/sub confirmation within %ss: reconnecting the result reader", RECHECK_EVERY)
            if self._reader is not None:
                self._reader.cancel()
            await self._resubscribe()
            self._reader = asyncio.get_running_loop().create_task(self._read())
        finally:
            self._recovering = False

    async def _resubscribe(self) -> None:
        old, self._pubsub = self._pubsub, self.server.client.pubsub()
        await self._quietly(old.aclose())
        for name, channel in list(self._channels.items()):
            channel.confirmed = anyio.Event()
            await self._quietly(self._pubsub.subscribe(name))
        self._idle.set()

    async def close(self) -> None:
        """Stop the reader and close the pub/sub connection; waiters time out or re-read."""
        if self._reader is not None:
            self._reader.cancel()
            with anyio.CancelScope(shield=True):
                try:
                    await self._reader
                except (asyncio.CancelledError, Exception):
                    pass
            self._reader = None
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            await self._quietly(pubsub.aclose())
        for channel in self._channels.values():
            channel.poke()
