"""The per-task state machine on the worker: claimed → process → run → final status → ack."""

from __future__ import annotations

import traceback
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import attrs

from qtasks.errors import BrokerUnavailable, ControlFlow, SerializationError, TaskCancelError
from qtasks.kernel.model import Decision, Delivery, ExecutionCall, Task, TaskMessage, now

if TYPE_CHECKING:
    from qtasks.kernel.worker import Worker

__all__ = ["process_delivery", "fail_delivery", "hand_back", "format_error", "persist"]


def format_error(error: BaseException) -> str:
    """Return the traceback of ``error`` as text."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _record(message: TaskMessage, worker: Worker, delivery: Delivery) -> Task:
    return Task(
        status="process", uuid=UUID(message.uuid), priority=message.priority, task_name=message.task_name,
        args=tuple(message.args), kwargs=dict(message.kwargs),
        created_at=datetime.fromtimestamp(message.created_at, timezone.utc), updated_at=now(),
        attempts=delivery.delivery_count, extra=dict(message.extra), app=worker.app,
    )


async def _finish(worker: Worker, delivery: Delivery, message: TaskMessage, task: Task) -> None:
    """Store the final record, then acknowledge: a task is acked only once its outcome is stored."""
    app = worker.app
    dispatcher = app.dispatcher
    task = await dispatcher.pipe("qtasks_task_status", worker=worker, task=task)
    try:
        await persist(worker, worker.steps.ack, task, delivery)
    except SerializationError as error:
        task = attrs.evolve(task, status="error", returning=None, traceback=f"the result cannot be stored: {error}")
        await persist(worker, worker.steps.ack, task, delivery)
    await _observe(worker, "qtasks_task_finished", task=task)
    await _observe(worker, "qtasks_task_acknowledged", message=message)


async def persist(worker: Worker, step: Any, *args: Any) -> None:
    """Run a record-and-queue step, retrying while the broker is unreachable.

    The outcome is already known, so it is worth waiting for: the step is retried with backoff
    (logged once per outage) until it succeeds or the worker is cancelled, in which case the
    lease runs out and the task runs again elsewhere.
    """
    delay = 0.05
    failures = 0
    while True:
        try:
            await step(*args)
        except (BrokerUnavailable, ConnectionError, OSError) as error:
            failures += 1
            if failures == 1:
                worker.app.log.error("storing an outcome failed (%s: %s); retrying until the broker answers", type(error).__name__, error)
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            if failures:
                worker.app.log.info("the broker answers again; outcome stored after %d retries", failures)
            return


async def _observe(worker: Worker, hook: str, **kwargs: Any) -> None:
    """Notify observers of an outcome that is already stored: even ControlFlow cannot change it."""
    try:
        await worker.app.dispatcher.notify(hook, worker=worker, **kwargs)
    except ControlFlow as signal:
        worker.app._internal_error(signal, f"{hook} (the outcome was already stored)")


def _outcome(process: Task, decision: Decision) -> Task:
    done = now()
    if decision.action == "succeed":
        return attrs.evolve(process, status="success", returning=decision.result, updated_at=done)
    if decision.action == "cancel":
        return attrs.evolve(process, status="cancel", cancel_reason=decision.reason, updated_at=done)
    return attrs.evolve(process, status="error", traceback=decision.reason, errors=(*process.errors, decision.reason or ""), updated_at=done)


async def process_delivery(worker: Worker, delivery: Delivery) -> None:
    """Run one delivery through the whole worker lifecycle, firing its triggers in order."""
    app = worker.app
    dispatcher = app.dispatcher
    try:
        message = worker.serializer.loads(delivery.envelope.payload)
    except SerializationError as error:
        await _undecodable(worker, delivery, error)
        return
    message = await dispatcher.pipe("qtasks_task_claimed", worker=worker, message=message)
    process = _record(message, worker, delivery)
    if delivery.delivery_count > 1:  # a retry or a redelivery: keep the earlier attempts' errors
        earlier = await worker.storage.get(process.uuid)
        if earlier is not None and earlier.errors:
            process = attrs.evolve(process, errors=earlier.errors)
    if delivery.lost >= worker.max_deliveries:
        reason = (
            f"dead-lettered: delivered {delivery.lost} time(s) without finishing (its worker died or lost its lease); "
            f"max_deliveries is {worker.max_deliveries}"
        )
        await persist(worker, worker.steps.dead_letter, attrs.evolve(process, status="error", traceback=reason, updated_at=now()), delivery, reason)
        app.log.error("task %s (%s): %s", message.uuid, message.task_name, reason)
        return
    definition = app.registry.tasks.get(message.task_name)
    if definition is None:
        known = ", ".join(sorted(app.registry.tasks)) or "none"
        reason = f"unknown task {message.task_name!r}: this worker has no such task (registered tasks: {known})"
        await _finish(worker, delivery, message, attrs.evolve(process, status="error", traceback=reason))
        return
    process = await dispatcher.pipe("qtasks_task_status", worker=worker, task=process)
    await worker.storage.save(process)
    await dispatcher.notify("qtasks_task_received", worker=worker, task=process)
    call = ExecutionCall(definition=definition, message=message, args=tuple(message.args), kwargs=dict(message.kwargs),
                         attempt=delivery.delivery_count, record=process)
    worker.running[message.uuid] = delivery
    try:
        executor = worker.executor_for(definition)
        result = None  # stays None when a scope suppresses the task's exception
        async with AsyncExitStack() as stack:  # closed when the run ends: success, error, cancel or timeout
            await dispatcher.scope("qtasks_task_scope", stack, worker=worker, call=call)
            call = await dispatcher.pipe("qtasks_task_resolve_args", worker=worker, call=call, stack=stack)
            result = await executor.execute(worker, call)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await hand_back(worker, delivery, process)
        raise
    except Exception as error:
        decision = await dispatcher.first("qtasks_task_failed", worker=worker, call=call, error=error)
        if decision is None:
            if isinstance(error, TaskCancelError):
                decision = Decision(action="cancel", reason=str(error))
            else:
                decision = Decision(action="fail", reason=format_error(error))
        if decision.action == "retry":
            await _retry(worker, delivery, message, process, decision, error)
            return
        final = _outcome(process, decision)
    else:
        # The function ran: a failing result plugin fails the task but never runs it again.
        result = await dispatcher.pipe("qtasks_task_result", worker=worker, call=call, result=result)
        final = attrs.evolve(process, status="success", returning=result, updated_at=now())
    finally:
        worker.running.pop(message.uuid, None)
    await _finish(worker, delivery, message, final)


async def _retry(worker: Worker, delivery: Delivery, message: TaskMessage, process: Task, decision: Decision, error: BaseException) -> None:
    app = worker.app
    reason = decision.reason or format_error(error)
    record = attrs.evolve(process, status="retry", traceback=reason, errors=(*process.errors, reason), updated_at=now())
    record = await app.dispatcher.pipe("qtasks_task_status", worker=worker, task=record)
    await persist(worker, worker.steps.requeue, record, delivery, decision.delay)
    await _observe(worker, "qtasks_task_finished", task=record)


async def fail_delivery(worker: Worker, delivery: Delivery, error: Exception) -> None:
    """Record a task as ``error`` when a plugin or component raised around it, outside the task.

    The worker goes on. If even the error record cannot be stored, the delivery goes back to the
    broker so that the task is not lost.
    """
    worker.app._internal_error(error, f"a hook or component around task {delivery.envelope.uuid} (see its traceback)")
    worker.running.pop(delivery.envelope.uuid, None)
    try:
        message = worker.serializer.loads(delivery.envelope.payload)
    except SerializationError as undecodable:
        await _undecodable(worker, delivery, undecodable)
        return
    try:
        record = _record(message, worker, delivery)
        if isinstance(error, TaskCancelError):
            record = attrs.evolve(record, status="cancel", cancel_reason=str(error), updated_at=now())
        else:
            reason = f"QTasks failed around this task (a plugin or component raised):\n{format_error(error)}"
            record = attrs.evolve(record, status="error", traceback=reason, updated_at=now())
        await worker.steps.ack(record, delivery)
    except Exception:
        worker.app.log.exception("task %s: cannot record the failure; handing it back", delivery.envelope.uuid)
        await worker.broker.requeue(delivery, 1.0)


async def hand_back(worker: Worker, delivery: Delivery, process: Task | None = None) -> None:
    """Give a delivery back to the broker (graceful stop); its record returns to ``new``."""
    if process is not None:
        await worker.steps.requeue(attrs.evolve(process, status="new", updated_at=now()), delivery, 0.0)
    else:
        await worker.broker.requeue(delivery, 0.0)


async def _undecodable(worker: Worker, delivery: Delivery, error: Exception) -> None:
    """Dead-letter a payload the serializer cannot read, recording ``error`` with the reason."""
    app = worker.app
    reason = f"dead-lettered: undecodable payload ({len(delivery.envelope.payload)} bytes): {error}"
    app.log.error("task %s: %s", delivery.envelope.uuid, reason)
    try:
        task_id: Any = UUID(delivery.envelope.uuid)
    except ValueError:
        task_id = None
    if task_id is None:
        await persist(worker, worker.broker.dead_letter, delivery, reason)
        return
    stored = await worker.storage.get(task_id)
    base = stored or Task(status="error", uuid=task_id, priority=delivery.envelope.priority, task_name="<undecodable>")
    record = attrs.evolve(base, status="error", traceback=reason, updated_at=now(), attempts=delivery.delivery_count, app=app)
    await persist(worker, worker.steps.dead_letter, record, delivery, reason)
