"""The ``qtasks`` command line: load an app with ``-A module:attr``, then run ``run`` or a plugin's command."""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any, NoReturn

from qtasks._state import kernel_of
from qtasks.cli_support import USAGE, CliError, positive_int, quiet_library_logs, redact_text
from qtasks.errors import QTasksError, close_matches
from qtasks.kernel.app import AsyncQueueTasks
from qtasks.kernel.blocking import QueueTasks
from qtasks.run_command import add_run_command
from qtasks.version import __version__

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["main", "CliError", "positive_int", "redact_text", "QtasksArgumentParser", "build_parser", "find_app_option", "load_app"]

APP_FLAGS = ("-A", "--app", "-app")
APP_HELP = "the app to load, as module:attr (e.g. myproject.tasks:app); accepted before or after the command"
DEBUG_FLAG = "--debug"
DEBUG_HELP = "on an error, print the Python traceback too; in commands other than run, show the library's log lines"


class QtasksArgumentParser(argparse.ArgumentParser):
    """An argparse parser that accepts ``-A`` and ``--debug`` on every (sub)command and reports
    errors on one line.

    Subparsers made with ``add_subparsers()`` are of this class too, so a plugin's command
    accepts ``-A`` after its name without declaring it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blocked_commands: dict[str, str] = {}  # command -> the disabled builtin plugin that provides it
        self.add_argument(*APP_FLAGS, dest="app", metavar="MODULE:ATTR", default=argparse.SUPPRESS, help=APP_HELP)
        self.add_argument(DEBUG_FLAG, dest="debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)

    def error(self, message: str) -> NoReturn:
        """Print one line naming the command and the problem, then exit with status 2."""
        self.exit(USAGE, f"{self.prog}: error: {redact_text(message)} (see {self.prog} --help)\n")


def find_app_option(argv: Sequence[str]) -> str | None:
    """Return the last ``-A``/``--app``/``-app`` value in ``argv`` (before any ``--``), or None.

    A plain scan rather than argparse: argparse would also take prefixes such as ``-a`` for
    ``-app``, stealing a plugin command's own short options before the app is even loaded.
    """
    found: str | None = None
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            break
        if arg in APP_FLAGS:
            if index + 1 >= len(argv):
                raise CliError(f"{arg} needs a value: module:attr, e.g. {arg} myproject.tasks:app", USAGE)
            found = argv[index + 1]
            index += 1
        elif arg.startswith(("--app=", "-app=")):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-A") and len(arg) > 2:
            found = arg[2:].removeprefix("=")
        index += 1
    return found


def _is_app(value: Any) -> bool:
    return isinstance(value, (QueueTasks, AsyncQueueTasks))


def _app_hint(module: Any) -> str:
    """Name what ``module`` defines that looks like an app (instances, then app factories)."""
    names = vars(module)
    apps = [name for name, value in names.items() if _is_app(value)]
    factories = [
        name for name, value in names.items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and "app" in name.lower()
    ]
    if apps or factories:
        found = [f"{module.__name__}:{name}" for name in apps + factories]
        return "it defines " + ", ".join(found)
    return "it defines no QueueTasks app (qtasks.QueueTasks or qtasks.asyncio.QueueTasks)"


def load_app(spec: str) -> tuple[Any, Any]:
    """Import ``module:attr`` (current directory first on sys.path) and return ``(app, kernel)``.

    ``attr`` may be dotted; a function is called as a factory. ``app`` is the object found
    (sync or async ``QueueTasks``); ``kernel`` is its ``AsyncQueueTasks``.

    Raises:
        CliError: With status 2 for a malformed spec, 1 when the app cannot be loaded.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or not all(part.isidentifier() for part in attr.split(".")):
        raise CliError(f"-A expects module:attr, e.g. -A myproject.tasks:app; got {spec!r}", USAGE)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(f"{error.name}.")):
            hint = f"; give the module name, not a file name: {module_name[:-3]!r}" if module_name.endswith(".py") else ""
            raise CliError(f"cannot import module {module_name!r}: no module named {error.name!r} in {cwd} or on sys.path{hint}") from None
        raise CliError(f"cannot import module {module_name!r}: ModuleNotFoundError: {error}") from None
    except Exception as error:
        raise CliError(f"cannot import module {module_name!r}: {type(error).__name__}: {error}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            similar = close_matches(part, [name for name in dir(obj) if not name.startswith("_")])
            raise CliError(f"module {module_name!r} has no attribute {attr!r}{similar}; {_app_hint(module)}")
        obj = getattr(obj, part)
    if not _is_app(obj) and (inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial)):
        try:
            obj = obj()
        except Exception as error:
            raise CliError(f"app factory {spec} raised {type(error).__name__}: {error}") from None
        what = f"{spec}() returned {type(obj).__name__}"
    else:
        what = f"{spec} is the class {obj.__name__}" if inspect.isclass(obj) else f"{spec} is {type(obj).__name__}"
    if not _is_app(obj):
        raise CliError(f"{what}, not a QueueTasks app (qtasks.QueueTasks or qtasks.asyncio.QueueTasks); {_app_hint(module)}")
    return obj, kernel_of(obj)


def build_parser(app: Any = None, spec: str | None = None) -> QtasksArgumentParser:
    """Build the full parser: ``run``, plus the commands the app's plugins register (if any app).

    Args:
        app: The loaded app (sync or async), or None (``--help`` without ``-A``).
        spec: The ``-A`` value it was loaded from; ``run --processes`` passes it on.
    """
    parser = QtasksArgumentParser(
        prog="qtasks",
        description="Run and inspect a QTasks app.",
        epilog="Commands other than run come from plugins: give -A module:attr to see them all "
        "(e.g. qtasks -A myproject.tasks:app --help lists the builtin plugins command too).",
    )
    parser.add_argument("--version", action="version", version=f"qtasks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    add_run_command(commands, app, spec)
    if app is not None:
        kernel = kernel_of(app)
        kernel.pm.hook.qtasks_register_commands(commands=commands, app=kernel)
        parser.blocked_commands = _blocked_commands(commands, kernel)
    return parser


def _blocked_commands(commands: argparse._SubParsersAction, kernel: Any) -> dict[str, str]:
    """Map each command of a disabled builtin plugin (that no other plugin provides) to that plugin."""
    found: dict[str, str] = {}
    for plugin, module in kernel.pm.blocked_builtins.items():
        register = getattr(module, "qtasks_register_commands", None)
        if register is not None:
            scratch = QtasksArgumentParser(prog="qtasks").add_subparsers()
            register(commands=scratch, app=kernel)
            found.update((command, plugin) for command in scratch.choices if command not in commands.choices)
    return found


def _command_word(argv: Sequence[str]) -> str | None:
    """The first word of ``argv`` that is neither an option nor the value of ``-A``: the command."""
    words = iter(argv[: _options_end(argv)])
    for word in words:
        if word in APP_FLAGS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _options_end(argv: Sequence[str]) -> int:
    """The index of ``--`` in ``argv`` (options end there), or its length."""
    return argv.index("--") if "--" in argv else len(argv)


def _main(argv: list[str], debug: bool) -> int:
    spec = find_app_option(argv)
    app = load_app(spec)[0] if spec is not None else None
    wants_help = any(arg in ("-h", "--help", "--version") for arg in argv[: _options_end(argv)])
    if app is None and not wants_help:
        raise CliError("no app given: pass -A module:attr, e.g. qtasks -A myproject.tasks:app run", USAGE)
    parser = build_parser(app, spec)
    command = _command_word(argv)
    if command in parser.blocked_commands:
        raise CliError(f"the command {command!r} comes from the builtin plugin {parser.blocked_commands[command]!r}, which "
                       f"app {kernel_of(app).name!r} disables: remove it from disable_plugins= (or QTASKS_DISABLE_PLUGINS) "
                       "to use it", USAGE)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        raise CliError(f"command {args.command!r} registered no handler: its plugin must call set_defaults(func=...)")
    with nullcontext() if debug or args.command == "run" else quiet_library_logs():
        result = func(args, kernel_of(app))
    return 0 if result is None else int(result)


def _report(prog: str, message: str, error: BaseException | None, debug: bool) -> None:
    """Print the error line on stderr; with ``--debug``, the traceback of ``error`` before it
    (passwords in URLs redacted there too)."""
    if debug and error is not None:
        print(redact_text("".join(traceback.format_exception(type(error), error, error.__traceback__))), end="", file=sys.stderr)
    print(f"{prog}: error: {redact_text(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args[: _options_end(args)]
    try:
        return _main(args, debug)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``qtasks ... | head``): exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CliError as error:
        _report(error.prog, str(error), error.__cause__ or error.__context__, debug)
        return error.code
    except (QTasksError, OSError, BaseExceptionGroup) as error:
        leaf: BaseException = error
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, BaseExceptionGroup) or not isinstance(leaf, (QTasksError, OSError)):
            raise
        _report("qtasks", f"{type(leaf).__name__}: {leaf}", leaf, debug)
        return 1
