"""``redis://`` storage: JSON records with a TTL once final, pushed to waiters, coupled to the broker."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from qtasks.builtin_plugins.records import RecordCodec
from qtasks.builtin_plugins.redis_results import ResultWaiter
from qtasks.builtin_plugins.redis_scripts import FINISHED, FINISHED_KEPT, SAVE, STATUSES
from qtasks.builtin_plugins.redis_server import RedisServer, server_for
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import FINAL_STATUSES, Delivery, Envelope, Task

__all__ = ["RedisStorage", "qtasks_make_storage", "RUNNING_WRITE_DELAY"]

log = logging.getLogger("qtasks.redis")
RUNNING_WRITE_DELAY = 0.002


def _is_final(record: bytes) -> bool:
    return json.loads(record)["status"] in FINAL_STATUSES


class RedisStorage:
    """Task records in Redis under ``qtasks:{app}:r:<uuid>``.

    A final record expires after ``result_ttl`` seconds and is published on the task's channel,
    so ``wait`` returns as soon as the task ends. With the Redis broker of the same app, every
    record change that goes with a queue change is one script (``CoupledStorage``), and the
    ``process`` records of running tasks are written together, at most ``RUNNING_WRITE_DELAY``
    seconds late, and not at all for a task that ends sooner: a task that takes a millisecond
    costs one round trip on the worker, not two. They are written only while the task is
    leased, so a late write never replaces a final record.

    Args:
        server: The app's shared Redis connection.
        result_ttl: Seconds a final record is kept.
    """

    def __init__(self, server: RedisServer, result_ttl: float = 86400.0) -> None:
        self.server = server
        self.result_ttl = result_ttl
        self.codec = RecordCodec()
        self.waiter = ResultWaiter(server)
        self._ttl_ms = max(int(result_ttl * 1000), 1)
        self._broker: Any = None
        self._running: dict[str, Task] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the shared connection."""
        await self.server.open()

    async def stop(self) -> None:
        """Stop the result reader and close the shared connection (when nothing else uses it)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._running.clear()
        for flushing in list(self._flushing):
            await asyncio.wait([flushing])
        await self.waiter.close()
        await self.server.close()

    def _key(self, uuid: UUID | str) -> str:
        return self.server.key("r", str(uuid))

    def _ttl(self, task: Task) -> int:
        """The TTL (ms) of a record: 0 (none) unless it is final."""
        return self._ttl_ms if task.status in FINAL_STATUSES else 0

    async def save(self, task: Task) -> None:
        """Store the record; a final one gets the TTL and is published to its waiters."""
        uuid = str(task.uuid)
        if task.status == "process" and self._broker is not None:
            self._running[uuid] = task
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(RUNNING_WRITE_DELAY, self._start_flush)
            return
        self._running.pop(uuid, None)
        ttl = self._ttl(task)
        channel = self.waiter.channel_name(str(task.uuid)) if ttl else ""
        await self.server.run("save", SAVE, [self._key(task.uuid)], [self.codec.dumps(task), ttl, channel])

    def _start_flush(self) -> None:
        self._flush = None
        if self._running:
            flushing = asyncio.get_running_loop().create_task(self._write_running())
            self._flushing.add(flushing)
            flushing.add_done_callback(self._flushing.discard)

    async def _write_running(self) -> None:
        batch, self._running = self._running, {}
        try:
            await self._broker.save_running([(uuid, self.codec.dumps(task)) for uuid, task in batch.items()])
        except Exception as error:  # unreachable: keep what no later record replaced, try again
            log.warning("writing %d running record(s) failed (%s); retrying", len(batch), error)
            for uuid, task in batch.items():
                self._running.setdefault(uuid, task)
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(0.5, self._start_flush)

    async def get(self, uuid: UUID) -> Task | None:
        """Return the record, or None (never stored, or expired)."""
        data = await self._read(str(uuid))
        return None if data is None else self.codec.loads(data)

    async def _read(self, uuid: str) -> bytes | None:
        key = self._key(uuid)
        return await self.server.call(lambda: self.server.client.get(key))

    async def wait(self, uuid: UUID, timeout: float) -> Task | None:
        """Return the record once final (pushed, not polled), or None after ``timeout``; None at
        once for a task that was never stored."""
        text = str(uuid)
        first = await self._read(text)
        if first is None or _is_final(first):
            return None if first is None else self.codec.loads(first)
        data = await self.waiter.wait(text, timeout, lambda: self._read(text), _is_final)
        return None if data is None else self.codec.loads(data)

    async def status_counts(self) -> dict[str, int]:
        """The records kept, by status: a SCAN of the app's record keys, then one script per
        1,000 of them that reads each record's first bytes. O(records kept); see docs/stats.md."""
        counts: Counter[str] = Counter()
        keys = await self.server.scan("r:*")
        for start in range(0, len(keys), 1000):
            flat = await self.server.run("statuses", STATUSES, keys[start:start + 1000], [])
            counts.update({flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)})
        return dict(counts)

    async def finished_within(self, seconds: float) -> dict[str, int]:
        """The records that became final in the last ``seconds`` seconds (whole seconds of the
        server's clock, this one included), by status: one script over the per-second counts."""
        if not 0 < seconds <= FINISHED_KEPT:
            raise ValueError(f"finished_within({seconds!r}): Redis keeps the counts of the last {FINISHED_KEPT} seconds; ask for 1 to {FINISHED_KEPT}")
        flat = await self.server.run("finished", FINISHED, [self.server.key("fin")], [max(round(seconds), 1)])
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def purge(self) -> int:
        """Delete every record of this app."""
        client = self.server.client
        keys = await self.server.scan("r:*")
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            await self.server.call(lambda: client.unlink(*chunk))
        return len(keys)

    # -- CoupledStorage: one script per record-and-queue change ---------------------------------

    def couples_with(self, broker: Any) -> bool:
        """True for the Redis broker on this very connection (which the coupled steps then use)."""
        if getattr(broker, "server", None) is self.server and hasattr(broker, "ack_with_record"):
            self._broker = broker
            return True
        return False

    async def save_enqueue(self, tasks: Sequence[Task], envelopes: Sequence[Envelope]) -> None:
        """Store the ``new`` records and queue the envelopes in one script."""
        await self._broker.enqueue_with_records(envelopes, [self.codec.dumps(t) for t in tasks])

    async def save_ack(self, task: Task, delivery: Delivery) -> None:
        """Store the final record, publish it and acknowledge, in one script."""
        self._running.pop(str(task.uuid), None)
        await self._broker.ack_with_record(delivery, self.codec.dumps(task), self._ttl(task))

    async def save_requeue(self, task: Task, delivery: Delivery, delay: float) -> None:
        """Store the record and give the task back, in one script (nothing if the lease was lost)."""
        self._running.pop(str(task.uuid), None)
        await self._broker.requeue_with_record(delivery, delay, self.codec.dumps(task))

    async def save_dead_letter(self, task: Task, delivery: Delivery, reason: str) -> None:
        """Store the ``error`` record and dead-letter the task, in one script."""
        self._running.pop(str(task.uuid), None)
        await self._broker.dead_letter_with_record(delivery, reason, self.codec.dumps(task), self._ttl(task))

    async def save_cancel(self, task: Task) -> bool:
        """Drop the queued task and store its ``cancel`` record, in one script."""
        return await self._broker.cancel_with_record(str(task.uuid), self.codec.dumps(task), self._ttl(task))


@hookimpl(trylast=True)
def qtasks_make_storage(app: Any, url: str) -> RedisStorage | None:
    """Serve ``redis://``, ``rediss://`` and ``unix://`` URLs."""
    server = server_for(app, url)
    return None if server is None else RedisStorage(server, result_ttl=app.config.result_ttl)
