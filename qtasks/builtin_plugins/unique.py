"""unique: ``add_task(..., unique_key=k)`` returns the live task holding ``k`` instead of queuing another."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any
from uuid import UUID

import anyio
import attrs

from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Task
from qtasks.kernel.producer import UNIQUE_KEY

__all__ = ["UNIQUE_PREFIX", "CLAIM_GRACE", "keys_name", "qtasks_task_unique", "qtasks_task_finished"]

UNIQUE_PREFIX = "qtasks:unique:"  # global config name: qtasks:unique:<app name>, key -> {"uuid", "at"}
CLAIM_GRACE = 5.0  # seconds a producer may take between claiming a key and storing its task's record
POLL_EVERY = 0.02  # seconds between two looks for the record of a holder that just claimed its key


def keys_name(app: Any) -> str:
    """The global config name that holds ``app``'s unique keys."""
    return f"{UNIQUE_PREFIX}{app.name}"


async def _live_holder(app: Any, held: Any) -> Task | None:
    """Return the record of the task that ``held`` names if it is still queued or running; None
    when the entry is stale: its task finished (cancelled ones too), or has no record
    ``CLAIM_GRACE`` seconds after it claimed the key (its producer failed before storing it)."""
    try:
        uuid, claimed_at = UUID(str(held["uuid"])), float(held.get("at", 0.0))
    except (TypeError, KeyError, ValueError, AttributeError):
        return None  # not an entry this plugin wrote: replace it
    now = time.time()
    deadline = time.monotonic() + max(0.0, min(claimed_at + CLAIM_GRACE - now, CLAIM_GRACE))
    while True:
        record = await app.storage.get(uuid)
        if record is not None:
            if record.finished:
                return None
            return record if record.app is app else attrs.evolve(record, app=app)
        if time.monotonic() >= deadline:
            return None
        await anyio.sleep(POLL_EVERY)  # the holder is between claiming the key and storing its record


@hookimpl
async def qtasks_task_unique(app: Any, task: Task, key: str) -> Task | None:
    """Claim ``key`` for ``task`` (None: it goes ahead), or return the live task holding it.

    One ``compare_and_swap`` claims a free key; a stale entry is replaced by another that
    expects exactly it, so of two producers racing for one key, one wins and the other sees it.
    """
    config = app.components.get("global_config")
    name = keys_name(app)
    mine = {"uuid": str(task.uuid), "at": time.time()}
    expected: Any = None
    while True:
        held = await config.compare_and_swap(name, key, expected, mine)
        if held == expected:
            return None
        holder = await _live_holder(app, held)
        if holder is not None:
            return holder
        expected = held  # stale: replace it, unless another producer changed it meanwhile


@hookimpl
def qtasks_task_finished(worker: Any, task: Task) -> Awaitable[None] | None:
    """Free the key of a finished task, if it still holds it (not for a ``retry`` record); a
    coroutine only for tasks that have a key."""
    key = task.extra.get(UNIQUE_KEY) if task.extra else None
    if not task.finished or not isinstance(key, str):
        return None
    return _release(worker, task, key)


async def _release(worker: Any, task: Task, key: str) -> None:
    config = worker.app.components.get("global_config")
    name = keys_name(worker.app)
    held = await config.get(name, key)
    if isinstance(held, dict) and held.get("uuid") == str(task.uuid):
        await config.compare_and_swap(name, key, held, None)
