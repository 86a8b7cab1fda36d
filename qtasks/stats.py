"""Stats of an app: ``AsyncStats(app).inspect()`` / ``SyncStats(app).inspect()`` describe its tasks
and count its queue, records, throughput and workers."""

from __future__ import annotations

import inspect as pyinspect
import json as jsonlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from qtasks._state import kernel_of
from qtasks.kernel.model import TaskStatusEnum, as_uuid
from qtasks.kernel.portal import run_blocking
from qtasks.kernel.protocols import QueueCounts, QueueStats, RecordStats
from qtasks.kernel.urls import redact_url

__all__ = [
    "AsyncStats", "SyncStats", "InspectStats", "AsyncInspectStats", "SyncInspectStats", "QueueCounts", "Throughput",
    "RunningTask", "WorkerStats", "Overview", "to_data", "THROUGHPUT_WINDOW", "STATIC_TARGETS", "RUNTIME_TARGETS",
]

THROUGHPUT_WINDOW = 60.0  # seconds of finished tasks that throughput() counts by default
NAMED_RUNNING = 200  # running tasks per call whose task name is read from the storage
STATIC_TARGETS = ("app", "task", "tasks")
RUNTIME_TARGETS = ("queues", "statuses", "throughput", "workers", "overview")


@attrs.frozen(kw_only=True)
class Throughput:
    """The tasks that finished in the last ``window`` seconds, by final status."""

    window: float
    finished: Mapping[str, int]
    total: int
    per_second: float

    @classmethod
    def of(cls, window: float, finished: Mapping[str, int]) -> Throughput:
        """Build it from a storage's ``finished_within(window)``."""
        total = sum(finished.values())
        return cls(window=window, finished=dict(sorted(finished.items())), total=total, per_second=round(total / window, 3))


@attrs.frozen(kw_only=True)
class RunningTask:
    """A task a worker runs; ``task_name`` is None when its record cannot be read."""

    uuid: str
    task_name: str | None


@attrs.frozen(kw_only=True)
class WorkerStats:
    """A live worker and what it ran at its last heartbeat."""

    worker_id: str
    host: str
    pid: int
    concurrency: int
    started_at: float
    last_seen_seconds: float
    running: tuple[RunningTask, ...]


@attrs.frozen(kw_only=True)
class Overview:
    """Every live figure of an app at ``taken_at``; None where the component cannot count."""

    app: str
    broker: str
    taken_at: float
    queues: QueueCounts | None
    statuses: Mapping[str, int] | None
    throughput: Throughput | None
    workers: tuple[WorkerStats, ...]


def to_data(value: Any) -> Any:
    """Return ``value`` as plain JSON-able data (attrs classes become dicts)."""
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, (list, tuple)):
        return [to_data(item) for item in value]
    return value


def _out(value: Any, json: bool) -> Any:
    return jsonlib.dumps(to_data(value), default=str) if json else value


async def _task_names(app: Any, uuids: Sequence[str]) -> dict[str, str]:
    names = {}
    for uuid in uuids[:NAMED_RUNNING]:
        try:
            task = await app.storage.get(as_uuid(uuid))
        except ValueError:  # an envelope queued without a task uuid has no record
            continue
        if task is not None:
            names[uuid] = task.task_name
    return names


class InspectStats:
    """Describes an app's tasks and plugins (what the original ``InspectStats`` showed)."""

    def __init__(self, app: Any) -> None:
        self._app = kernel_of(app)

    def app(self, json: bool = False) -> Any:
        """The app's name, URL scheme, task count and plugin hooks."""
        app = self._app
        data = {
            "name": app.name,
            "tasks": sorted(app.tasks),
            "plugins": [row.name for row in app.pm.plugin_info() if not row.blocked],
            "hooks": sorted({h for row in app.pm.plugin_info() for h in row.hooks}),
        }
        return jsonlib.dumps(data) if json else data

    def task(self, task_name: str, json: bool = False) -> Any:
        """One task's options and signature."""
        definition = self._app.tasks.get(task_name)
        if definition is None:
            raise KeyError(f"unknown task {task_name!r}; registered: {', '.join(sorted(self._app.tasks))}")
        data = {
            "name": definition.name, "priority": definition.priority, "description": definition.description,
            "tags": definition.tags, "awaiting": definition.awaiting, "generating": definition.generating,
            "echo": definition.echo, "retry": definition.retry, "max_time": definition.max_time,
            "signature": str(pyinspect.signature(definition.func)), "options": {k: repr(v) for k, v in definition.options.items()},
        }
        return jsonlib.dumps(data) if json else data

    def tasks(self, *tasks: str, json: bool = False) -> Any:
        """Several tasks (all when none is named)."""
        data = [self.task(name) for name in (tasks or sorted(self._app.tasks))]
        return jsonlib.dumps(data) if json else data


class AsyncInspectStats(InspectStats):
    """:class:`InspectStats` plus the live figures, awaited; each starts the components if needed.

    With ``json=True`` a method returns a JSON string instead of the object.
    """

    async def _started(self) -> Any:
        await self._app.start()
        return self._app

    async def queues(self, json: bool = False) -> Any:
        """The broker's :class:`QueueCounts`, or None when the broker cannot count (no ``QueueStats``)."""
        broker = (await self._started()).broker
        return _out(await broker.queue_counts() if isinstance(broker, QueueStats) else None, json)

    async def statuses(self, json: bool = False) -> Any:
        """The records kept by status (every status of ``TaskStatusEnum`` present, 0 or more), or
        None when the storage cannot count (no ``RecordStats``)."""
        storage = (await self._started()).storage
        if not isinstance(storage, RecordStats):
            return _out(None, json)
        return _out({**{status.value: 0 for status in TaskStatusEnum}, **await storage.status_counts()}, json)

    async def throughput(self, window: float = THROUGHPUT_WINDOW, json: bool = False) -> Any:
        """The tasks that finished in the last ``window`` seconds (:class:`Throughput`), or None
        when the storage cannot count (no ``RecordStats``)."""
        if not window > 0:
            raise ValueError(f"throughput(window={window!r}): give a number of seconds > 0, e.g. window=60")
        storage = (await self._started()).storage
        if not isinstance(storage, RecordStats):
            return _out(None, json)
        return _out(Throughput.of(float(window), await storage.finished_within(window)), json)

    async def workers(self, json: bool = False) -> Any:
        """The live workers, oldest first, with the uuid and task name of each task they run."""
        app = await self._started()
        infos = sorted(await app.broker.workers(), key=lambda info: info.started_at)
        names = await _task_names(app, [uuid for info in infos for uuid in info.running])
        clock = time.time()
        found = [
            WorkerStats(worker_id=info.worker_id, host=info.host, pid=info.pid, concurrency=info.concurrency,
                        started_at=info.started_at, last_seen_seconds=round(max(clock - info.seen_at, 0.0), 3),
                        running=tuple(RunningTask(uuid=uuid, task_name=names.get(uuid)) for uuid in info.running))
            for info in infos
        ]
        return _out(found, json)

    async def overview(self, json: bool = False) -> Any:
        """Every live figure at once (:class:`Overview`)."""
        app = await self._started()
        overview = Overview(
            app=app.name, broker=redact_url(app.url), taken_at=time.time(), queues=await self.queues(),
            statuses=await self.statuses(), throughput=await self.throughput(), workers=tuple(await self.workers()),
        )
        return _out(overview, json)


class SyncInspectStats(InspectStats):
    """:class:`InspectStats` plus the live figures of :class:`AsyncInspectStats`, blocking."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._live = AsyncInspectStats(app)

    def queues(self, json: bool = False) -> Any:
        """See :meth:`AsyncInspectStats.queues`."""
        return run_blocking(self._app, self._live.queues, json=json)

    def statuses(self, json: bool = False) -> Any:
        """See :meth:`AsyncInspectStats.statuses`."""
        return run_blocking(self._app, self._live.statuses, json=json)

    def throughput(self, window: float = THROUGHPUT_WINDOW, json: bool = False) -> Any:
        """See :meth:`AsyncInspectStats.throughput`."""
        return run_blocking(self._app, self._live.throughput, window, json=json)

    def workers(self, json: bool = False) -> Any:
        """See :meth:`AsyncInspectStats.workers`."""
        return run_blocking(self._app, self._live.workers, json=json)

    def overview(self, json: bool = False) -> Any:
        """See :meth:`AsyncInspectStats.overview`."""
        return run_blocking(self._app, self._live.overview, json=json)


class AsyncStats:
    """``await AsyncStats(app).inspect()`` fires ``qtasks_stats_inspected`` and returns an :class:`AsyncInspectStats`."""

    def __init__(self, app: Any, plugins: Any = None) -> None:
        self.app = kernel_of(app)

    async def inspect(self) -> AsyncInspectStats:
        """Fire ``qtasks_stats_inspected`` and return the inspector."""
        await self.app.dispatcher.notify("qtasks_stats_inspected", app=self.app, stats=self)
        return AsyncInspectStats(self.app)


class SyncStats(AsyncStats):
    """The blocking form of :class:`AsyncStats`: ``inspect()`` returns a :class:`SyncInspectStats`."""

    def inspect(self) -> SyncInspectStats:  # type: ignore[override]
        """Fire ``qtasks_stats_inspected`` and return the inspector."""
        run_blocking(self.app, AsyncStats.inspect, self)
        return SyncInspectStats(self.app)
