"""The ``qtasks task get|cancel`` and ``qtasks queue purge`` commands: one task by uuid, and the whole queue."""

from __future__ import annotations

import argparse
from typing import Any

from qtasks.cli_output import iso_time, print_json, print_record, to_json
from qtasks.cli_support import CliError, confirm, run_with_components
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import Task, as_uuid
from qtasks.kernel.urls import redact_url, scheme_of

__all__ = ["qtasks_register_commands", "task_row", "get_command", "cancel_command", "purge_command"]

MEMORY_HINT = ("; memory:// lives inside one process, so this command sees none of another process's tasks "
               "(share the SQLite default or redis:// between processes)")


@hookimpl
def qtasks_register_commands(commands: argparse._SubParsersAction, app: Any) -> None:
    """Add ``task get UUID``, ``task cancel UUID`` and ``queue purge``."""
    task = commands.add_parser("task", help="show or cancel one task", description="Act on one task by its uuid.")
    sub = task.add_subparsers(dest="task_command", metavar="SUBCOMMAND", title="subcommands", required=True)
    get = sub.add_parser("get", help="a task's status, arguments, result and errors",
                         description="Show a task's stored record: status, arguments, result, attempts and tracebacks.")
    get.add_argument("uuid", metavar="UUID", help="the task's uuid")
    get.add_argument("--json", action="store_true", help="print the record as a JSON object")
    get.set_defaults(func=get_command, usage_error=get.error)
    cancel = sub.add_parser("cancel", help="cancel a queued, delayed or running task",
                            description="Cancel a task: a queued or delayed one never runs; a running one is asked to stop.")
    cancel.add_argument("uuid", metavar="UUID", help="the task's uuid")
    cancel.add_argument("--reason", default="", help="recorded as the task's cancel_reason")
    cancel.add_argument("--json", action="store_true", help='print {"uuid", "cancelled", "status"}')
    cancel.set_defaults(func=cancel_command, usage_error=cancel.error)
    queue = commands.add_parser("queue", help="act on the whole queue", description="Act on every queued task.")
    queue_sub = queue.add_subparsers(dest="queue_command", metavar="SUBCOMMAND", title="subcommands", required=True)
    purge = queue_sub.add_parser("purge", help="drop every queued task (asks first, or --yes)",
                                 description="Drop every task waiting in the queue (ready or delayed); running tasks "
                                 "and dead letters stay. On a terminal it asks you to type yes; elsewhere it needs --yes.")
    purge.add_argument("--yes", action="store_true", help="confirm: the queued tasks cannot be recovered")
    purge.add_argument("--json", action="store_true", help='print {"dropped": N}')
    purge.set_defaults(func=purge_command)


def _parse_uuid(args: argparse.Namespace) -> str:
    try:
        return str(as_uuid(args.uuid))
    except ValueError as error:
        args.usage_error(str(error))
        raise  # usage_error exits; this line only tells type checkers so


def _unknown(app: Any, uuid: str) -> str:
    hint = MEMORY_HINT if scheme_of(app.url) == "memory" else ""
    return f"no task {uuid} in app {app.name!r} on {redact_url(app.url)}{hint}"


# -- task get --------------------------------------------------------------------------------------


def task_row(task: Task) -> dict[str, Any]:
    """Return a task record as JSON-ready data: every field, times as ISO 8601 in UTC."""
    return {
        "uuid": str(task.uuid), "task_name": task.task_name, "status": task.status, "priority": task.priority,
        "args": list(task.args), "kwargs": dict(task.kwargs), "returning": task.returning, "attempts": task.attempts,
        "retry": task.retry, "retry_parent_uuid": _optional(task.retry_parent_uuid),
        "retry_child_uuid": _optional(task.retry_child_uuid), "cancel_reason": task.cancel_reason,
        "traceback": task.traceback, "errors": list(task.errors), "extra": dict(task.extra),
        "created_at": iso_time(task.created_at), "updated_at": iso_time(task.updated_at),
    }


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _fields(row: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``name: value`` lines of ``task get``: values as JSON, optional fields only when set."""
    shown = [(name, str(row[name])) for name in ("uuid", "task_name", "status", "priority")]
    shown += [(name, to_json(row[name])) for name in ("args", "kwargs", "returning")]
    shown.append(("attempts", str(row["attempts"])))
    optional = ("retry", "retry_parent_uuid", "retry_child_uuid", "cancel_reason")
    shown += [(name, str(row[name])) for name in optional if row[name] is not None]
    if row["extra"]:
        shown.append(("extra", to_json(row["extra"])))
    return shown + [("created_at", row["created_at"]), ("updated_at", row["updated_at"])]


def _blocks(row: dict[str, Any]) -> list[tuple[str, str]]:
    errors = row["errors"]
    if errors:
        return [(f"error {index} of {len(errors)}", text) for index, text in enumerate(errors, 1)]
    return [("traceback", row["traceback"])] if row["traceback"] else []


async def _get(app: Any, uuid: str) -> Task | None:
    return await app.get(uuid)


def get_command(args: argparse.Namespace, app: Any) -> int:
    """Print a task's record: fields and tracebacks, or JSON; status 1 when there is no such task."""
    uuid = _parse_uuid(args)
    record = run_with_components(app, _get, uuid)
    if record is None:
        raise CliError(_unknown(app, uuid), prog="qtasks task get")
    row = task_row(record)
    if args.json:
        print_json(row)
    else:
        print_record(_fields(row), _blocks(row))
    return 0


# -- task cancel -----------------------------------------------------------------------------------


async def _cancel(app: Any, uuid: str, reason: str) -> tuple[bool, Task | None]:
    done = await app.cancel(uuid, reason or "cancelled from the command line")
    return done, await app.get(uuid)


def cancel_command(args: argparse.Namespace, app: Any) -> int:
    """Cancel ``args.uuid``; status 1 when it is unknown or already finished."""
    uuid = _parse_uuid(args)
    done, record = run_with_components(app, _cancel, uuid, args.reason)
    if args.json:
        print_json({"uuid": uuid, "cancelled": done, "status": None if record is None else record.status})
    if not done:
        state = f"it already ended with status {record.status!r}" if record is not None else _unknown(app, uuid)
        raise CliError(f"{uuid} was not cancelled: {state}", prog="qtasks task cancel")
    if args.json:
        return 0
    if record is not None and record.status == "cancel":
        print(f"cancelled {uuid}: it will not run")
    else:
        print(f"asked the worker running {uuid} to stop it; it ends with status 'cancel'")
    return 0


# -- queue purge -----------------------------------------------------------------------------------


async def _queued(app: Any) -> int | None:
    depth = getattr(app.broker, "depth", None)  # not every broker can count its queue
    return None if depth is None else int(await depth())


async def _purge(app: Any) -> int:
    return int(await app.broker.purge())


def purge_command(args: argparse.Namespace, app: Any) -> int:
    """Drop every queued task once confirmed (``--yes`` or ``yes`` typed on a terminal)."""
    if not args.yes:
        count = run_with_components(app, _queued)
        what = "every queued task" if count is None else f"the {count} queued task(s)"
        confirm(False, "qtasks queue purge", f"this drops {what} of app {app.name!r} on {redact_url(app.url)} for good")
    dropped = run_with_components(app, _purge)
    if args.json:
        print_json({"dropped": dropped})
    else:
        print(f"dropped {dropped} queued task(s)")
    return 0
