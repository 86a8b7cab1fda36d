"""The ``qtasks stats inspect TARGET [ARG ...]`` and ``qtasks top`` commands: an app's tasks and live figures."""

from __future__ import annotations

import argparse
import inspect as pyinspect
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from qtasks.builtin_plugins.stats_view import header_line, overview_sections, plain_text, rich_view, sections_for, show
from qtasks.cli_output import to_json
from qtasks.cli_support import run_with_components
from qtasks.hookspecs import hookimpl
from qtasks.kernel.portal import run_blocking
from qtasks.stats import RUNTIME_TARGETS, STATIC_TARGETS, AsyncInspectStats, AsyncStats, Overview, to_data

__all__ = ["qtasks_register_commands", "parse_value", "parse_extras", "inspect_command", "top_command", "TARGETS"]

TARGETS = (*STATIC_TARGETS, *RUNTIME_TARGETS)
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d*|-?\.\d+")


@hookimpl
def qtasks_register_commands(commands: argparse._SubParsersAction, app: Any) -> None:
    """Add ``stats inspect`` and ``top``."""
    stats = commands.add_parser("stats", help="inspect an app: its tasks, queue, statuses, throughput and workers",
                                description="Inspect an app through its stats inspector (see docs/stats.md).")
    sub = stats.add_subparsers(dest="stats_command", metavar="SUBCOMMAND", title="subcommands", required=True)
    inspect = sub.add_parser("inspect", help="print what one inspector method returns",
                             description=f"Call the inspector method TARGET ({', '.join(TARGETS)}) and print what it "
                             "returns. ARGs are its arguments: a value, or key=value; true/false become booleans and "
                             "numbers become int or float (e.g. stats inspect task send_mail, stats inspect throughput window=300).")
    inspect.add_argument("target", metavar="TARGET", help=f"one of: {', '.join(TARGETS)}")
    inspect.add_argument("extras", nargs="*", metavar="ARG", help="the method's arguments: VALUE or KEY=VALUE")
    inspect.add_argument("--json", action="store_true", help="print JSON (json=true as an ARG does the same)")
    inspect.set_defaults(func=inspect_command, usage_error=inspect.error)
    top = commands.add_parser("top", help="a live view of the queue, statuses, throughput and workers",
                              description="Show the queue, the tasks by status, the throughput of the last minute and "
                              "the live workers, refreshed every --interval seconds until Ctrl-C.")
    top.add_argument("--interval", type=_seconds, default=1.0, metavar="S", help="seconds between refreshes (default 1)")
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    top.add_argument("--json", action="store_true", help="print JSON: one object with --once, else one line per refresh")
    top.set_defaults(func=top_command)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


# -- stats inspect ---------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """Return ``true``/``false`` as a bool, a whole number as an int, a decimal as a float, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    return float(text) if _FLOAT.fullmatch(text) else text


def parse_extras(extras: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Split ``ARG``s into positional values (kept as text) and ``key=value`` keywords (converted)."""
    positional: list[str] = []
    keywords: dict[str, Any] = {}
    for extra in extras:
        key, sep, value = extra.partition("=")
        if sep and key.isidentifier():
            keywords[key] = parse_value(value)
        else:
            positional.append(extra)
    return positional, keywords


def _usage(target: str) -> str:
    """The target's call form, e.g. ``task(task_name)``."""
    shown = []
    for parameter in list(pyinspect.signature(getattr(AsyncInspectStats, target)).parameters.values())[1:]:
        if parameter.name == "json":
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            shown.append(f"[{parameter.name} ...]")
        else:
            shown.append(parameter.name if parameter.default is parameter.empty else f"{parameter.name}={parameter.default!r}")
    return f"{target}({', '.join(shown)})"


async def _inspect(app: Any, target: str, positional: list[str], keywords: dict[str, Any]) -> Any:
    inspector = await AsyncStats(app).inspect()
    result = getattr(inspector, target)(*positional, **keywords)
    return await result if pyinspect.isawaitable(result) else result


def inspect_command(args: argparse.Namespace, app: Any) -> int:
    """Call the inspector's ``TARGET`` with the ``ARG``s; print a table (rich on a terminal) or JSON."""
    if args.target not in TARGETS:
        args.usage_error(f"unknown target {args.target!r}; the targets are: {', '.join(TARGETS)}")
    positional, keywords = parse_extras(args.extras)
    as_json = args.json or keywords.pop("json", False) is True
    try:
        pyinspect.signature(getattr(AsyncInspectStats, args.target)).bind(None, *positional, **keywords)
    except TypeError as error:
        args.usage_error(f"{error}; call it as {_usage(args.target)}")
    try:
        if args.target in RUNTIME_TARGETS:
            value = run_with_components(app, _inspect, args.target, positional, keywords)
        else:  # the static targets need no broker
            value = run_blocking(app, _inspect, app, args.target, positional, keywords)
    except (KeyError, ValueError) as error:  # an unknown task name, a bad window: the caller's arguments
        args.usage_error(str(error.args[0]) if error.args else repr(error))
    if as_json:
        print(to_json(to_data(value), indent=2))
    else:
        show(sections_for(args.target, value))
    return 0


# -- top -------------------------------------------------------------------------------------------


async def _overview(app: Any, inspector: AsyncInspectStats) -> Overview:
    return await inspector.overview()


async def _nothing(app: Any) -> None:
    return None


def _open(app: Any) -> bool:
    """Start the components for the whole session; return whether this call started them."""
    if app.components.started:
        return False
    try:
        run_blocking(app, app.start)
    except OSError:
        run_with_components(app, _nothing)  # tries again through the commands' runner: its one-line error
        raise
    return True


def _close(app: Any) -> None:
    try:
        run_blocking(app, app.close)
    except Exception:  # leaving after Ctrl-C: a query may still hold a connection
        pass


def top_command(args: argparse.Namespace, app: Any) -> int:
    """Draw the live figures every ``--interval`` seconds (a rich live view on a terminal) until
    Ctrl-C, which exits with status 0; with ``--once``, one frame."""
    opened = False
    try:
        inspector = run_blocking(app, AsyncStats(app).inspect)
        opened = _open(app)
        return _draw(args, lambda: run_with_components(app, _overview, inspector))
    except KeyboardInterrupt:
        return 0
    finally:
        if opened:
            _close(app)


def _draw(args: argparse.Namespace, frame: Callable[[], Overview]) -> int:
    if args.once:
        overview = frame()
        if args.json:
            print(to_json(to_data(overview), indent=2))
        else:
            show(overview_sections(overview), header_line(overview))
        return 0
    if args.json or not sys.stdout.isatty():
        while True:
            overview = frame()
            text = to_json(to_data(overview)) if args.json else plain_text(overview_sections(overview), header_line(overview)) + "\n"
            print(text, flush=True)
            time.sleep(args.interval)
    from rich.live import Live

    note = f" (every {args.interval:g}s; Ctrl-C quits)"

    def view(overview: Overview) -> Any:
        return rich_view(overview_sections(overview), header_line(overview, note))

    with Live(view(frame()), auto_refresh=False) as live:
        while True:
            time.sleep(args.interval)
            live.update(view(frame()), refresh=True)
