"""Worker hooks, the per-task hot path, in firing order: claimed … acknowledged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtasks.hookspecs import trigger
from qtasks.kernel.model import Decision, ExecutionCall, Task, TaskMessage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager, AsyncExitStack

    from qtasks.kernel.worker import Worker

__all__ = [
    "qtasks_worker_services",
    "qtasks_task_claimed",
    "qtasks_task_received",
    "qtasks_task_scope",
    "qtasks_task_resolve_args",
    "qtasks_task_yielded",
    "qtasks_task_result",
    "qtasks_task_failed",
    "qtasks_task_status",
    "qtasks_task_finished",
    "qtasks_task_acknowledged",
]


@trigger("register", {"worker"})
def qtasks_worker_services(worker: Worker) -> Callable[[], Awaitable[None]] | None:
    """Return an async function to run beside the worker's consumers for as long as it serves.

    Fired by the worker when it starts claiming (sync-only; every result is used). Each returned
    ``async def run()`` starts in the worker's task group and is cancelled when the worker stops,
    after the running tasks are done or handed back. It should loop until then; an exception it
    raises is logged and it is not restarted. Return None to run nothing. The builtin ``cancel``
    plugin uses it to watch for cancel requests.
    """


@trigger("pipe", {"worker", "broker", "storage"}, value="message", value_type=TaskMessage)
async def qtasks_task_claimed(worker: Worker, message: TaskMessage) -> TaskMessage | None:
    """A message was claimed from the broker and decoded; nothing has run yet.

    Fired by the worker first. Pipe: return a new :class:`TaskMessage` to change what runs.
    """


@trigger("notify", {"worker"})
async def qtasks_task_received(worker: Worker, task: Task) -> None:
    """The task's ``process`` record is stored; it is about to run. Fired by the worker. Notify."""


@trigger("scope", {"worker"})
async def qtasks_task_scope(worker: Worker, call: ExecutionCall) -> AbstractAsyncContextManager[Any] | None:
    """Wrap the run of one task: return a context manager (sync or async), or None.

    Fired by the worker after ``qtasks_task_received``, before the arguments are resolved; the
    scopes stay open around argument resolution and the executor call. Scopes are entered in call
    order and exited in reverse, on success, error, cancel and timeout alike; an exception raised
    inside is seen by ``__exit__``/``__aexit__``. A scope that suppresses the task's exception
    makes the task succeed with result None.
    """


@trigger("pipe", {"worker"}, value="call", value_type=ExecutionCall)
async def qtasks_task_resolve_args(worker: Worker, call: ExecutionCall, stack: AsyncExitStack) -> ExecutionCall | None:
    """The arguments the function will be called with are being resolved (Depends, State, ...).

    Fired by the worker inside the task's scopes, just before the executor runs. ``stack`` is an
    ``AsyncExitStack`` that the worker closes when this run ends (success, error, cancel or
    timeout), before ``qtasks_task_result`` / ``qtasks_task_failed``: enter task-scoped resources
    into it. Pipe: return ``attrs.evolve(call, args=..., kwargs=...)``.
    """


@trigger("pipe", {"worker"}, value="value")
async def qtasks_task_yielded(worker: Worker, call: ExecutionCall, value: Any) -> Any:
    """A generator task yielded ``value``. Fired by the executor for each value.

    Pipe: a non-None return replaces the value; the final value is collected into the result list
    and sent back into the generator (``x = yield v`` receives it).
    """


@trigger("pipe", {"worker"}, value="result")
async def qtasks_task_result(worker: Worker, call: ExecutionCall, result: Any) -> Any:
    """The task returned ``result`` (a list for generators). Fired by the worker on success.

    Pipe: a non-None return replaces the result that is stored. An implementation that raises
    ends the task ``error``; the function is not run again.
    """


@trigger("first", {"worker"})
async def qtasks_task_failed(worker: Worker, call: ExecutionCall, error: BaseException) -> Decision | None:
    """The task raised ``error``. Fired by the worker on failure.

    First result: return a :class:`Decision` (retry, fail, cancel, succeed). With none, the task
    ends ``error`` with its traceback (``cancel`` for ``TaskCancelError``).
    """


@trigger("pipe", {"worker", "broker", "storage"}, value="task", value_type=Task)
async def qtasks_task_status(worker: Worker, task: Task) -> Task | None:
    """A record with a new status (process, retry or a final one) is about to be stored.

    Fired by the worker before each status write of a run. Records the kernel writes to recover
    (a hand-back to ``new`` on stop, an undecodable payload, a failure around the task) do not
    pass through it. Pipe: return a new :class:`Task` to change it.
    """


@trigger("notify", {"worker", "broker", "storage"})
async def qtasks_task_finished(worker: Worker, task: Task) -> None:
    """The final record (or the ``retry`` record) is stored. Fired by the worker. Notify."""


@trigger("notify", {"worker", "broker"})
async def qtasks_task_acknowledged(worker: Worker, message: TaskMessage) -> None:
    """The broker has acknowledged (deleted) the message. Fired by the worker last. Notify."""
