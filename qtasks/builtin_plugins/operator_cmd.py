"""The ``qtasks dlq list|requeue|purge`` and ``qtasks workers`` commands: dead letters and live workers."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs

from qtasks.cli_output import iso_time, print_json, print_rows
from qtasks.cli_support import confirm, positive_int, run_with_components
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import DeadLetter, WorkerInfo, now

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = [
    "qtasks_register_commands",
    "requeue_dead_letters",
    "dead_letter_rows",
    "worker_rows",
    "list_command",
    "requeue_command",
    "purge_command",
    "workers_command",
    "DLQ_COLUMNS",
    "WORKER_COLUMNS",
]

DLQ_COLUMNS = ("uuid", "task_name", "dead_at", "deliveries", "reason")
WORKER_COLUMNS = ("worker_id", "host", "pid", "concurrency", "started_at", "seen_ago", "running", "uuids")
UNDECODABLE = "<undecodable>"
SHOWN_UUIDS = 3  # running uuids shown per worker in the table; --json lists them all
LIST_HINT = "`qtasks -A module:attr dlq list` shows the dead letters"
JSON_HELP = "print JSON instead of text"


@hookimpl
def qtasks_register_commands(commands: argparse._SubParsersAction, app: AsyncQueueTasks) -> None:
    """Add ``dlq list``, ``dlq requeue``, ``dlq purge`` and ``workers`` to the CLI."""
    _add_dlq_commands(commands)
    workers = commands.add_parser("workers", help="the live workers and the tasks they run",
                                  description="List the workers whose heartbeat the broker saw lately.")
    workers.add_argument("--json", action="store_true", help="print a JSON list of objects")
    workers.set_defaults(func=workers_command)


def _add_dlq_commands(commands: argparse._SubParsersAction) -> None:
    dlq = commands.add_parser("dlq", help="list, requeue or purge the dead-letter queue",
                              description="Inspect and repair the dead-letter queue.")
    sub = dlq.add_subparsers(dest="dlq_command", metavar="SUBCOMMAND", title="subcommands", required=True)
    listing = sub.add_parser("list", help="the dead letters, oldest first",
                             description="List the dead letters, oldest first, with the reason each is there.")
    listing.add_argument("--limit", type=positive_int("the number of dead letters shown"), default=100, metavar="N", help="show at most N (default 100)")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects (full reasons)")
    listing.set_defaults(func=list_command)
    requeue = sub.add_parser("requeue", help="queue dead letters again",
                             description="Queue the given dead letters (or all) again with fresh delivery counts.")
    requeue.add_argument("uuids", nargs="*", metavar="UUID", help="the dead letters to queue again")
    requeue.add_argument("--all", action="store_true", help="queue every dead letter again")
    requeue.add_argument("--json", action="store_true", help='print {"requeued": [...], "unknown": [...]}')
    requeue.set_defaults(func=requeue_command, usage_error=requeue.error)
    purge = sub.add_parser("purge", help="drop every dead letter (asks first, or --yes)",
                           description="Drop every dead letter for good. On a terminal it asks you to type yes; "
                           "elsewhere it needs --yes.")
    purge.add_argument("--yes", action="store_true", help="confirm: the dead letters cannot be recovered")
    purge.add_argument("--json", action="store_true", help='print {"dropped": N}')
    purge.set_defaults(func=purge_command)


# -- the async part --------------------------------------------------------------------------------


async def _dead_letters(app: AsyncQueueTasks, limit: int) -> list[DeadLetter]:
    return await app.broker.dead_letters(limit)


async def _purge(app: AsyncQueueTasks) -> int:
    return await app.broker.purge_dead()


async def _workers(app: AsyncQueueTasks) -> list[WorkerInfo]:
    return await app.broker.workers()


async def _mark_queued(app: AsyncQueueTasks, uuid: str) -> None:
    """Store a dead task's record as ``new`` again (while it is dead, so no worker can race it)."""
    try:
        task_id = UUID(uuid)
    except ValueError:  # an envelope queued without a task uuid has no record
        return
    task = await app.storage.get(task_id)
    if task is not None and task.finished:
        await app.storage.save(attrs.evolve(task, status="new", updated_at=now()))


async def requeue_dead_letters(app: AsyncQueueTasks, uuids: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Queue dead letters again (all when ``uuids`` is None) and mark their records ``new``.

    Args:
        app: A started app.
        uuids: The dead letters to queue again, or None for all.

    Returns:
        The requeued uuids, and those of ``uuids`` that were not dead letters.
    """
    wanted = None if uuids is None else list(dict.fromkeys(uuids))
    dead = {letter.uuid for letter in await app.broker.dead_letters(limit=1_000_000)}
    for uuid in dead if wanted is None else [u for u in wanted if u in dead]:
        await _mark_queued(app, uuid)  # before the requeue: a dead task cannot be running
    requeued = await app.broker.requeue_dead(wanted)
    done = set(requeued)
    return requeued, [uuid for uuid in wanted or () if uuid not in done]


# -- rows ------------------------------------------------------------------------------------------


def _task_name(serializer: Any, payload: bytes) -> str:
    try:
        return str(serializer.loads(payload).task_name)
    except Exception:  # any serializer's failure means the same to an operator
        return UNDECODABLE


def dead_letter_rows(app: AsyncQueueTasks, letters: Sequence[DeadLetter]) -> list[dict[str, Any]]:
    """Return the rows of ``dlq list``: the task name decoded from the payload, dead_at as ISO time."""
    return [
        {"uuid": letter.uuid, "task_name": _task_name(app.serializer, letter.payload), "dead_at": iso_time(letter.dead_at),
         "deliveries": letter.delivery_count, "priority": letter.priority, "reason": letter.reason}
        for letter in letters
    ]


def worker_rows(workers: Sequence[WorkerInfo], clock: float | None = None) -> list[dict[str, Any]]:
    """Return the rows of ``workers``: started_at as ISO time, seconds since the last heartbeat."""
    clock = time.time() if clock is None else clock
    return [
        {"worker_id": info.worker_id, "app": info.app, "host": info.host, "pid": info.pid,
         "concurrency": info.concurrency, "started_at": iso_time(info.started_at),
         "last_seen_seconds": round(max(clock - info.seen_at, 0.0), 3), "running": list(info.running)}
        for info in sorted(workers, key=lambda info: info.started_at)
    ]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "-"


def _running_uuids(uuids: list[str]) -> str:
    shown = ", ".join(uuids[:SHOWN_UUIDS]) or "-"
    return f"{shown} (+{len(uuids) - SHOWN_UUIDS} more)" if len(uuids) > SHOWN_UUIDS else shown


def _dead_letter_cells(row: dict[str, Any]) -> list[str]:
    return [row["uuid"], row["task_name"], row["dead_at"], str(row["deliveries"]), _first_line(row["reason"])]


def _worker_cells(row: dict[str, Any]) -> list[str]:
    return [row["worker_id"], row["host"], str(row["pid"]), str(row["concurrency"]), row["started_at"],
            f"{row['last_seen_seconds']:.1f}s", str(len(row["running"])), _running_uuids(row["running"])]


# -- commands --------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace, app: AsyncQueueTasks) -> int:
    """Print the oldest ``--limit`` dead letters: a table (first line of each reason) or JSON."""
    letters = run_with_components(app, _dead_letters, args.limit)
    print_rows(dead_letter_rows(app, letters), args.json, "no dead letters", DLQ_COLUMNS, _dead_letter_cells)
    if len(letters) == args.limit and not args.json:
        print(f"(the oldest {args.limit} shown; there may be more: raise --limit)", file=sys.stderr)
    return 0


def requeue_command(args: argparse.Namespace, app: AsyncQueueTasks) -> int:
    """Queue the given dead letters (or ``--all``) again; status 1 when some uuid was not one."""
    if args.all == bool(args.uuids):
        args.usage_error("give --all or the UUIDs of dead letters to requeue, not both" if args.all
                         else "nothing to requeue: give the UUIDs of dead letters, or --all")
    requeued, unknown = run_with_components(app, requeue_dead_letters, None if args.all else args.uuids)
    if args.json:
        print_json({"requeued": requeued, "unknown": unknown})
    elif requeued:
        print(f"requeued {len(requeued)} dead letter(s):")
        for uuid in requeued:
            print(f"  {uuid}")
    elif not unknown:
        print("no dead letters to requeue")
    if unknown:
        print(f"qtasks dlq requeue: error: not in the dead-letter queue: {', '.join(unknown)}; {LIST_HINT}", file=sys.stderr)
        return 1
    return 0


def purge_command(args: argparse.Namespace, app: AsyncQueueTasks) -> int:
    """Drop every dead letter once confirmed (``--yes`` or ``yes`` typed on a terminal)."""
    confirm(args.yes, "qtasks dlq purge", f"this drops every dead letter for good ({LIST_HINT} first)")
    dropped = run_with_components(app, _purge)
    if args.json:
        print_json({"dropped": dropped})
    else:
        print(f"dropped {dropped} dead letter(s)")
    return 0


def workers_command(args: argparse.Namespace, app: AsyncQueueTasks) -> int:
    """Print the live workers, with the uuids of the tasks they run: a table or JSON."""
    rows = worker_rows(run_with_components(app, _workers))
    print_rows(rows, args.json, "no live workers", WORKER_COLUMNS, _worker_cells)
    return 0
