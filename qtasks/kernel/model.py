"""The kernel's data: task records, calls, wire messages and decisions, all attrs classes."""

from __future__ import annotations

import enum
import time
import uuid as uuid_module
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import attrs

__all__ = [
    "TaskStatusEnum",
    "FINAL_STATUSES",
    "Task",
    "TaskCall",
    "TaskMessage",
    "Envelope",
    "Delivery",
    "DeadLetter",
    "WorkerInfo",
    "Call",
    "ExecutionCall",
    "Decision",
    "TaskDefinition",
    "ConfigEntry",
    "new_uuid",
    "as_uuid",
    "now",
]


class TaskStatusEnum(str, enum.Enum):
    """The statuses a task record goes through; the values are the stored strings."""

    NEW = "new"
    PROCESS = "process"
    SUCCESS = "success"
    ERROR = "error"
    CANCEL = "cancel"
    RETRY = "retry"

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES = frozenset({"success", "error", "cancel"})


def new_uuid() -> UUID:
    """Return a fresh random task id."""
    return uuid_module.uuid4()


def as_uuid(value: UUID | str) -> UUID:
    """Return ``value`` as a UUID; a string that is not one raises ValueError naming the fix."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a task uuid: pass the uuid of a Task (task.uuid)") from None


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


@attrs.frozen(kw_only=True)
class Task:
    """A task's stored record, as ``app.get`` and ``add_task(timeout=...)`` return it.

    The first thirteen fields keep the original QTasks ``Task`` order and meaning. ``attempts``
    counts the task's deliveries; ``errors`` holds the traceback of each failed attempt, oldest
    first (retries keep them all; the last is also ``traceback``).
    """

    status: str
    uuid: UUID
    priority: int
    task_name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    created_at: datetime = attrs.field(factory=now)
    updated_at: datetime = attrs.field(factory=now)
    returning: Any = None
    traceback: str | None = None
    retry: int | None = None
    retry_child_uuid: UUID | None = None
    retry_parent_uuid: UUID | None = None
    cancel_reason: str | None = None
    attempts: int = 0
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    errors: tuple[str, ...] = ()
    app: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def finished(self) -> bool:
        """True once the status is final (success, error or cancel)."""
        return self.status in FINAL_STATUSES

    def wait_result(self, timeout: float = 100.0) -> Task | None:
        """Block until this task ends; return the final record, or None when ``timeout`` runs out."""
        from qtasks.kernel.portal import run_blocking

        kernel = _owner(self)
        return run_blocking(kernel, kernel.wait_result, self.uuid, timeout)

    async def wait_result_async(self, timeout: float = 100.0) -> Task | None:
        """Await this task's end; return the final record, or None when ``timeout`` runs out."""
        return await _owner(self).wait_result(self.uuid, timeout)

    def cancel(self, reason: str = "") -> bool:
        """Cancel this task (blocking); see ``app.cancel``."""
        from qtasks.kernel.portal import run_blocking

        kernel = _owner(self)
        return run_blocking(kernel, kernel.cancel, self.uuid, reason)

    async def cancel_async(self, reason: str = "") -> bool:
        """Cancel this task; see ``app.cancel``."""
        return await _owner(self).cancel(self.uuid, reason)

    def stream(self) -> Any:
        """Follow a generator task's values as they are produced: ``async for value in
        task.stream()`` or ``for value in task.stream()``; it ends when the task ends."""
        kernel = _owner(self)
        stream = kernel.pm.hook.qtasks_make_stream(app=kernel, task=self)
        if stream is None:
            blocked = " (the builtin 'generators' plugin is disabled)" if "generators" in kernel.pm.blocked_builtins else ""
            raise RuntimeError(f"task.stream() needs a plugin that implements qtasks_make_stream{blocked}")
        return stream


def _owner(task: Task) -> Any:
    from qtasks import _state

    kernel = _state.kernel_of(task.app)
    if kernel is None:
        raise RuntimeError("this Task has no app: create a QueueTasks first, or call app.get(uuid)")
    return kernel


@attrs.frozen(kw_only=True)
class TaskCall:
    """What a producer asks for; ``qtasks_task_prepare`` plugins may replace it."""

    task_name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    priority: int = 0
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TaskMessage:
    """The message that travels from producer to worker through the broker, as JSON via cattrs."""

    uuid: str
    task_name: str
    priority: int = 0
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    created_at: float = attrs.field(factory=time.time)
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Envelope:
    """What a broker stores: ordering keys beside an opaque serialized payload."""

    uuid: str
    priority: int
    payload: bytes
    not_before: float = 0.0


@attrs.frozen(kw_only=True)
class Delivery:
    """One claimed envelope under a lease.

    Attributes:
        envelope: What was queued.
        delivery_count: How many times the envelope has been claimed, this claim included.
        lost: How many earlier claims ended without an ack or a requeue (their worker died or
            its lease ran out); past ``max_deliveries`` the worker dead-letters the envelope.
        receipt: The broker's own token for ack, requeue and renewal.
    """

    envelope: Envelope
    delivery_count: int = 1
    lost: int = 0
    receipt: Any = None


@attrs.frozen(kw_only=True)
class DeadLetter:
    """An envelope in the dead-letter queue, with the reason it is there."""

    uuid: str
    reason: str
    dead_at: float
    priority: int = 0
    payload: bytes = b""
    delivery_count: int = 0


@attrs.frozen(kw_only=True)
class WorkerInfo:
    """A worker as the broker's registry shows it: who it is and what it runs."""

    worker_id: str
    app: str
    host: str
    pid: int
    concurrency: int
    started_at: float
    seen_at: float = 0.0
    running: tuple[str, ...] = ()


@attrs.frozen
class Call:
    """One call for ``add_tasks``: ``Call(1, 2, key=3)`` carries positional and keyword arguments."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__attrs_init__(args, kwargs)  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class ExecutionCall:
    """A task about to run on a worker: ``qtasks_task_resolve_args`` plugins may replace it."""

    definition: TaskDefinition
    message: TaskMessage
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    attempt: int = 1
    record: Task | None = None  # the ``process`` record of this run, as the worker stored it

    @property
    def uuid(self) -> str:
        """The task id."""
        return self.message.uuid


@attrs.frozen(kw_only=True)
class Decision:
    """What ``qtasks_task_failed`` decides about a failed run.

    Attributes:
        action: ``"fail"`` (status error), ``"retry"`` (run again after ``delay`` seconds),
            ``"cancel"`` (status cancel) or ``"succeed"`` (status success with ``result``).
        delay: Seconds before a retry.
        result: The result recorded by ``"succeed"``.
        reason: Text recorded as the traceback (fail, retry) or the cancel reason.
    """

    action: str = attrs.field(validator=attrs.validators.in_({"fail", "retry", "cancel", "succeed"}))
    delay: float = 0.0
    result: Any = None
    reason: str | None = None


@attrs.define(kw_only=True, eq=False)
class TaskDefinition:
    """A registered task: its function and options (the original ``TaskExecSchema`` fields)."""

    name: str
    func: Callable[..., Any]
    priority: int = 0
    awaiting: bool = False
    generating: str | bool = False
    echo: bool = False
    max_time: float | None = None
    retry: int | None = None
    retry_on_exc: list[type[BaseException]] | None = None
    decode: Callable[..., Any] | None = None
    tags: list[str] | None = None
    description: str | None = None
    generate_handler: Callable[..., Any] | None = None
    executor: Any = None
    middlewares_before: list[Any] = attrs.field(factory=list)
    middlewares_after: list[Any] = attrs.field(factory=list)
    extra: dict[str, Any] = attrs.field(factory=dict)
    options: dict[str, Any] = attrs.field(factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        """Return a plugin-declared option, whether stored as a field or in ``options``."""
        if name in self.options:
            return self.options[name]
        return getattr(self, name, default)


@attrs.frozen(kw_only=True)
class ConfigEntry:
    """One global-config write: ``app.global_config.set(name, key, value)``."""

    name: str
    key: str
    value: Any
