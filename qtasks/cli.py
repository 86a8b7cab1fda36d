"""The ``qtasks`` command line: load an app with ``-A module:attr``, then run ``run`` or a plugin's command."""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from qtasks._state import kernel_of
from qtasks.errors import QTasksError, close_matches
from qtasks.kernel.app import AsyncQueueTasks
from qtasks.kernel.blocking import QueueTasks
from qtasks.kernel.urls import redact_url
from qtasks.version import __version__

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["main", "CliError", "positive_int", "QtasksArgumentParser", "build_parser", "find_app_option", "load_app", "redact_text"]

log = logging.getLogger("qtasks.cli")
USAGE = 2
APP_FLAGS = ("-A", "--app", "-app")
APP_HELP = "the app to load, as module:attr (e.g. myproject.tasks:app); accepted before or after the command"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


class CliError(Exception):
    """An error the CLI reports as one line on stderr.

    Args:
        message: The line to print (after ``qtasks: error:``).
        code: The exit status: 2 for usage errors, 1 otherwise.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def redact_text(text: str) -> str:
    """Return ``text`` with the password of every URL in it replaced by ``***``."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


class QtasksArgumentParser(argparse.ArgumentParser):
    """An argparse parser that accepts ``-A`` on every (sub)command and reports errors on one line.

    Subparsers made with ``add_subparsers()`` are of this class too, so a plugin's command
    accepts ``-A`` after its name without declaring it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(*APP_FLAGS, dest="app", metavar="MODULE:ATTR", default=argparse.SUPPRESS, help=APP_HELP)

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


def positive_int(meaning: str) -> Callable[[str], int]:
    """Return an argparse ``type=`` that accepts whole numbers >= 1; errors say what the number is."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1 ({meaning}), got {value}")
        return value

    return parse


def _configure_logging() -> None:
    logger = logging.getLogger("qtasks")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s: %(levelname)s] %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def run_worker(app: Any, concurrency: int | None) -> int:
    """Serve ``app`` (sync or async) until SIGINT/SIGTERM, letting running tasks finish.

    Returns:
        0 once the worker has drained and the components have stopped.
    """
    import anyio

    kernel = kernel_of(app)
    _configure_logging()
    slots = concurrency or kernel.config.max_tasks_process
    log.info("serving app %r on %s, %d task(s) at once; SIGINT or SIGTERM stops it", kernel.name, redact_url(kernel.url), slots)
    if app is kernel:
        anyio.run(kernel.serve, concurrency)
    else:
        try:
            app.run_forever(concurrency=concurrency)
        finally:
            app.close()
    log.info("worker stopped")
    return 0


def build_parser(app: Any = None) -> QtasksArgumentParser:
    """Build the full parser: ``run``, plus the commands the app's plugins register (if any app)."""
    parser = QtasksArgumentParser(
        prog="qtasks",
        description="Run and inspect a QTasks app.",
        epilog="Commands other than run come from plugins: give -A module:attr to see them all "
        "(e.g. qtasks -A myproject.tasks:app --help lists the builtin plugins command too).",
    )
    parser.add_argument("--version", action="version", version=f"qtasks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    run = commands.add_parser("run", help="run a worker until SIGINT/SIGTERM", description="Run a worker "
                              "until SIGINT or SIGTERM; then it stops claiming and lets running tasks finish.")
    run.add_argument("-c", "--concurrency", type=positive_int("the number of tasks run at once"), default=None, metavar="N",
                     help="tasks run at once (default: the app's config.max_tasks_process)")
    run.set_defaults(func=lambda args, kernel: run_worker(app, args.concurrency))
    if app is not None:
        kernel = kernel_of(app)
        kernel.pm.hook.qtasks_register_commands(commands=commands, app=kernel)
    return parser


def _main(argv: list[str]) -> int:
    spec = find_app_option(argv)
    app = load_app(spec)[0] if spec is not None else None
    wants_help = any(arg in ("-h", "--help", "--version") for arg in argv[: argv.index("--") if "--" in argv else None])
    if app is None and not wants_help:
        raise CliError("no app given: pass -A module:attr, e.g. qtasks -A myproject.tasks:app run", USAGE)
    args = build_parser(app).parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        raise CliError(f"command {args.command!r} registered no handler: its plugin must call set_defaults(func=...)")
    kernel = kernel_of(app)
    result = func(args, kernel)
    return 0 if result is None else int(result)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``qtasks ... | head``): exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CliError as error:
        print(f"qtasks: error: {redact_text(str(error))}", file=sys.stderr)
        return error.code
    except (QTasksError, OSError, BaseExceptionGroup) as error:
        leaf: BaseException = error
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, BaseExceptionGroup) or not isinstance(leaf, (QTasksError, OSError)):
            raise
        print(f"qtasks: error: {type(leaf).__name__}: {redact_text(str(leaf))}", file=sys.stderr)
        return 1
