"""What every command shares: the one-line error, URL redaction, number options, app calls and confirmation."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from qtasks.errors import QTasksError
from qtasks.kernel.portal import run_blocking
from qtasks.kernel.urls import redact_url

__all__ = ["USAGE", "CliError", "redact_text", "positive_int", "quiet_library_logs", "run_with_components", "confirm"]

T = TypeVar("T")
USAGE = 2
LIBRARY_LOGGER = "qtasks"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


class CliError(Exception):
    """An error the CLI reports as one line on stderr: ``PROG: error: MESSAGE``.

    Args:
        message: The line to print after ``error:``.
        code: The exit status: 2 for usage errors, 1 otherwise.
        prog: The command named at the start of the line (``qtasks dlq purge``).
    """

    def __init__(self, message: str, code: int = 1, prog: str = "qtasks") -> None:
        super().__init__(message)
        self.code = code
        self.prog = prog


def redact_text(text: str) -> str:
    """Return ``text`` with the password of every URL in it replaced by ``***``."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


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


@contextmanager
def quiet_library_logs() -> Iterator[None]:
    """Hide the ``qtasks.*`` log lines in the block (a command's error line says it all: an
    unreachable broker's retries need not be logged too); the level is restored after."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _session(app: Any, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Start the components, run ``func(app, *args)``, and close them if this call started them."""
    opened = not app.components.started
    await app.start()
    try:
        return await func(app, *args)
    finally:
        if opened:
            await app.close()


def run_with_components(app: Any, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(app, *args)`` with the app's components started, from sync code.

    Components already started (a worker serves in this process) stay open; otherwise they are
    started for the call and closed after it. The call runs on the loop that runs the app when
    made from one of its worker threads, else on the app's own loop thread.

    Args:
        app: The async kernel.
        func: A coroutine function taking the app first.
        *args: Its other arguments.

    Raises:
        CliError: When the broker or storage cannot be reached: an ``OSError`` that is not a
            ``QTasksError`` (those, such as ``BrokerUnavailable``, name their fix and pass through).
    """
    try:
        return run_blocking(app, _session, app, func, *args)
    except QTasksError:  # BrokerUnavailable and the like name their fix already
        raise
    except OSError as error:
        raise CliError(f"cannot reach the broker at {redact_url(app.url)} ({type(error).__name__}: "
                       f"{redact_text(str(error))}); check that it runs and that the app's broker_url is right") from error


def confirm(yes: bool, prog: str, warning: str) -> None:
    """Return once a destructive command is confirmed: by ``--yes``, or by typing ``yes`` on a terminal.

    Args:
        yes: ``--yes`` was given.
        prog: The command, for the error line (``qtasks queue purge``).
        warning: What will be lost, e.g. ``this drops the 3 queued task(s) for good``.

    Raises:
        CliError: Status 1 when stdin is not a terminal (nobody can answer) or the answer is not ``yes``.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{warning}; pass --yes to confirm (stdin is not a terminal, so nobody can type yes)", prog=prog)
    print(f"{warning}. Type yes to confirm: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer != "yes":
        raise CliError(f"not confirmed (answered {answer!r}, not 'yes'): nothing was dropped", prog=prog)
