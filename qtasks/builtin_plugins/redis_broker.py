"""``redis://`` broker: leased, at-least-once delivery where every state change is one Lua script."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio
import attrs

from qtasks.builtin_plugins.redis_scripts import QUEUE_KEYS, SCRIPTS
from qtasks.builtin_plugins.redis_server import RedisServer, server_for
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import DeadLetter, Delivery, Envelope, WorkerInfo
from qtasks.kernel.protocols import QueueCounts

__all__ = ["RedisBroker", "qtasks_make_broker"]

log = logging.getLogger("qtasks.redis")
MIN_BLOCK = 0.01


class RedisBroker:
    """A broker on Redis that survives worker crashes and server restarts (with persistence).

    A claim leases tasks for ``lease`` seconds; the worker's heartbeat renews them; a lease that
    runs out puts its task back with its lost count raised. An idle worker blocks on a wake-up
    list instead of polling. See ``redis_scripts`` for the keys and the scripts.

    Args:
        server: The app's shared Redis connection.
        lease: Seconds a claim lasts without a heartbeat.
    """

    def __init__(self, server: RedisServer, lease: float = 30.0) -> None:
        self.server = server
        self.lease = lease
        self.keys = [server.key(name) for name in QUEUE_KEYS]
        self._script_keys = [self.keys[0]]  # the scripts derive the other keys from its prefix
        self._lease_ms = max(int(lease * 1000), 1)

    async def start(self) -> None:
        """Open the shared connection."""
        await self.server.open()

    async def stop(self) -> None:
        """Close the shared connection (when no other component uses it)."""
        await self.server.close()

    async def ping(self) -> bool:
        """Return whether Redis answers."""
        return bool(await self.server.call(lambda: self.server.client.ping()))

    async def _run(self, name: str, args: Sequence[Any]) -> Any:
        return await self.server.run(name, SCRIPTS[name], self._script_keys, args)

    async def enqueue(self, envelopes: Sequence[Envelope]) -> None:
        """Queue envelopes in one script (all or none); a uuid already known is skipped."""
        await self.enqueue_with_records(envelopes, [b""] * len(envelopes))

    async def enqueue_with_records(self, envelopes: Sequence[Envelope], records: Sequence[bytes]) -> None:
        """Queue envelopes and store each one's record (``b""``: none) in one script."""
        args: list[Any] = [len(envelopes)]
        for envelope, record in zip(envelopes, records):
            args += [envelope.uuid, envelope.priority, int(envelope.not_before * 1000), envelope.payload, record]
        await self._run("enqueue", args)

    async def claim(self, worker_id: str, max_count: int, timeout: float) -> list[Delivery]:
        """Lease up to ``max_count`` tasks, blocking on the wake-up list up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            rows, due_ms = await self._run("claim", [worker_id, max_count, self._lease_ms])
            if rows:
                return [self._delivery(row, worker_id) for row in rows]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            wait = remaining if due_ms < 0 else min(remaining, due_ms / 1000)
            if wait >= MIN_BLOCK:
                await self.server.call(lambda: self.server.blocking.blpop([self.keys[QUEUE_KEYS.index("wake")]], timeout=wait))
            else:
                await anyio.sleep(wait)

    @staticmethod
    def _delivery(row: list[Any], worker_id: str) -> Delivery:
        uuid, priority, payload, count, lost = row
        envelope = Envelope(uuid=uuid.decode(), priority=int(float(priority)), payload=payload)
        return Delivery(envelope=envelope, delivery_count=int(count), lost=int(lost), receipt=worker_id)

    async def heartbeat(self, worker: WorkerInfo, deliveries: Sequence[Delivery]) -> None:
        """Refresh the worker's registry entry and renew the leases it still holds."""
        entry = json.dumps(attrs.asdict(worker))
        await self._run("heartbeat", [worker.worker_id, entry, self._lease_ms, *[d.envelope.uuid for d in deliveries]])

    async def forget_worker(self, worker_id: str) -> None:
        """Remove the worker's registry entry."""
        await self._run("forget_worker", [worker_id])

    async def workers(self) -> list[WorkerInfo]:
        """The workers whose last heartbeat is within three leases."""
        rows = await self._run("workers", [self._lease_ms])
        found = []
        for entry, seen_ms in rows:
            fields = json.loads(entry)
            fields["running"] = tuple(fields["running"])
            fields["seen_at"] = float(seen_ms) / 1000
            found.append(WorkerInfo(**fields))
        return found

    async def ack(self, delivery: Delivery) -> None:
        """Delete the task's message and bookkeeping (only while this worker holds its lease)."""
        await self.ack_with_record(delivery, b"", 0)

    async def ack_with_record(self, delivery: Delivery, record: bytes, ttl_ms: int) -> None:
        """Acknowledge and store the final record (published to its waiters) in one script."""
        if not await self._run("ack", [delivery.envelope.uuid, delivery.receipt, record, ttl_ms]):
            log.warning("task %s: the lease was lost before the ack (the worker stalled for a whole lease, or the task "
                        "was given back); this outcome is not stored and the task runs again elsewhere", delivery.envelope.uuid)

    async def save_running(self, records: Sequence[tuple[str, bytes]]) -> None:
        """Store ``(uuid, record)`` pairs of running tasks, skipping tasks no longer leased."""
        args: list[Any] = [len(records)]
        for uuid, record in records:
            args += [uuid, record]
        await self._run("save_running", args)

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Give the task back (only while this worker still holds its lease)."""
        await self.requeue_with_record(delivery, delay, b"")

    async def requeue_with_record(self, delivery: Delivery, delay: float, record: bytes) -> bool:
        """Give the task back and store its record in one script; False if the lease was lost."""
        args = [delivery.envelope.uuid, delivery.receipt, int(delay * 1000), record]
        return bool(await self._run("requeue", args))

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the task to the dead-letter queue (only while this worker holds its lease)."""
        await self.dead_letter_with_record(delivery, reason, b"", 0)

    async def dead_letter_with_record(self, delivery: Delivery, reason: str, record: bytes, ttl_ms: int) -> bool:
        """Dead-letter the task and store its final record in one script; False if the lease was lost."""
        return bool(await self._run("dead_letter", [delivery.envelope.uuid, delivery.receipt, reason, record, ttl_ms]))

    async def cancel(self, uuid: str) -> bool:
        """Drop a queued task that no worker holds."""
        return await self.cancel_with_record(uuid, b"", 0)

    async def cancel_with_record(self, uuid: str, record: bytes, ttl_ms: int) -> bool:
        """Drop a queued task and store its ``cancel`` record in one script."""
        return bool(await self._run("cancel", [uuid, record, ttl_ms]))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        rows = await self._run("dead_letters", [limit])
        return [
            DeadLetter(uuid=uuid.decode(), reason=why.decode(errors="replace"), dead_at=float(dead_at) / 1000,
                       priority=int(float(priority)), payload=payload, delivery_count=int(count))
            for uuid, why, dead_at, priority, payload, count in rows
        ]

    async def requeue_dead(self, uuids: Sequence[str] | None = None) -> list[str]:
        """Queue dead letters again with fresh counts (all when ``uuids`` is None)."""
        if uuids is not None and not uuids:
            return []
        return [u.decode() for u in await self._run("requeue_dead", list(uuids or []))]

    async def purge_dead(self) -> int:
        """Drop every dead letter."""
        return int(await self._run("purge_dead", []))

    async def purge(self) -> int:
        """Drop every queued task (leased and dead ones stay)."""
        return int(await self._run("purge", []))

    async def depth(self) -> int:
        """Tasks waiting to be claimed (ready and delayed; cancelled tombstones excluded)."""
        client = self.server.client
        ready, delayed = self.keys[0], self.keys[1]
        queued = await self.server.call(lambda: client.zrange(ready, 0, -1))
        messages = self.keys[QUEUE_KEYS.index("msg")]
        alive = 0
        if queued:
            exists = await self.server.call(lambda: client.hmget(messages, [m[16:] for m in queued]))
            alive = sum(1 for e in exists if e is not None)
        return alive + int(await self.server.call(lambda: client.zcard(delayed)))

    async def queue_counts(self) -> QueueCounts:
        """Count the queue's states in one script: HLEN and ZCARDs, one ZCOUNT per priority."""
        ready, delayed, leased, dead, by_priority = await self._run("queue_counts", [])
        counts = {int(float(by_priority[i])): int(by_priority[i + 1]) for i in range(0, len(by_priority), 2)}
        return QueueCounts(ready=counts, delayed=int(delayed), leased=int(leased), dead=int(dead))


@hookimpl(trylast=True)
def qtasks_make_broker(app: Any, url: str) -> RedisBroker | None:
    """Serve ``redis://``, ``rediss://`` and ``unix://`` URLs."""
    server = server_for(app, url)
    return None if server is None else RedisBroker(server, lease=app.config.task_lease)
