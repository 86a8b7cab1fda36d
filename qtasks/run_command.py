"""The ``qtasks run`` command: one worker in this process, or ``--processes N`` supervised worker processes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import anyio

from qtasks._state import kernel_of
from qtasks.cli_support import USAGE, CliError, positive_int, quiet_library_logs, run_with_components
from qtasks.errors import BrokerUnavailable
from qtasks.kernel.portal import run_blocking
from qtasks.kernel.urls import redact_url, scheme_of
from qtasks.supervisor import Supervisor

__all__ = ["add_run_command", "run_worker", "run_processes", "worker_command"]

log = logging.getLogger("qtasks.cli")


def add_run_command(commands: argparse._SubParsersAction, app: Any, spec: str | None) -> None:
    """Add ``run [-c N] [-p N] [--min-uptime S]``; it serves ``app``, loaded from ``spec``."""
    run = commands.add_parser("run", help="run a worker until SIGINT/SIGTERM", description="Run a worker "
                              "until SIGINT or SIGTERM; then it stops claiming and lets running tasks finish.")
    run.add_argument("-c", "--concurrency", type=positive_int("the number of tasks run at once"), default=None, metavar="N",
                     help="tasks run at once, per process (default: the app's config.max_tasks_process)")
    run.add_argument("-p", "--processes", type=positive_int("the number of worker processes"), default=1, metavar="N",
                     help="run N worker processes sharing the queue, restarting one that dies (default 1: "
                     "this process serves); needs a broker processes share (SQLite or Redis, not memory://)")
    run.add_argument("--min-uptime", type=_seconds, default=1.0, metavar="SECONDS",
                     help="with --processes: a process failing sooner than this after it started failed at startup; "
                     "after 5 in a row the supervisor gives up (default 1)")

    def handle(args: argparse.Namespace, kernel: Any) -> int:
        if args.processes == 1:
            return run_worker(app, args.concurrency)
        assert spec is not None  # the CLI loads the app from -A before it parses
        command = worker_command(spec, args.concurrency, getattr(args, "debug", False))
        return run_processes(kernel, command, args.processes, args.concurrency, args.min_uptime)

    run.set_defaults(func=handle)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


async def _check_broker(kernel: Any) -> None:
    """Start the components and ping the broker: an unreachable one fails now, in one line."""
    with quiet_library_logs():
        await kernel.start()
        if not await kernel.broker.ping():
            raise BrokerUnavailable(f"the broker at {redact_url(kernel.url)} did not answer a ping; check that it runs")


async def _check_and_serve(kernel: Any, concurrency: int | None) -> None:
    try:
        await _check_broker(kernel)
    except BaseException:
        await kernel.close()
        raise
    _log_serving(kernel, concurrency)
    await kernel.serve(concurrency)


def _log_serving(kernel: Any, concurrency: int | None, processes: int = 1) -> None:
    _configure_logging()
    slots = concurrency or kernel.config.max_tasks_process
    what = f"supervising {processes} worker processes of app" if processes > 1 else "serving app"
    each = " each" if processes > 1 else ""
    log.info("%s %r on %s, %d task(s) at once%s (pid %d); SIGINT or SIGTERM stops it", what, kernel.name,
             redact_url(kernel.url), slots, each, os.getpid())


def _configure_logging() -> None:
    """Show the ``qtasks.*`` INFO lines on stderr when nothing else (the ``logging`` plugin, the
    user) configured logging."""
    logger = logging.getLogger("qtasks")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s: %(levelname)s] %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def run_worker(app: Any, concurrency: int | None) -> int:
    """Serve ``app`` (sync or async) until SIGINT/SIGTERM, letting running tasks finish.

    The broker is pinged first: if it cannot be reached within ``config.broker_timeout`` the
    command fails with one line instead of serving a worker that retries forever.

    Returns:
        0 once the worker has drained and the components have stopped.
    """
    kernel = kernel_of(app)
    if app is kernel:
        anyio.run(_check_and_serve, kernel, concurrency)
    else:
        run_blocking(kernel, _check_broker, kernel)  # on the app's loop thread, which then serves
        _log_serving(kernel, concurrency)
        try:
            app.run_forever(concurrency=concurrency)
        finally:
            app.close()
    log.info("worker stopped")
    return 0


def worker_command(spec: str, concurrency: int | None, debug: bool = False) -> list[str]:
    """The command line of one supervised worker process: ``python -m qtasks -A SPEC run [-c N]``."""
    command = [sys.executable, "-m", "qtasks", "-A", spec, "run"]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command + (["--debug"] if debug else [])


def run_processes(kernel: Any, command: list[str], processes: int, concurrency: int | None, min_uptime: float) -> int:
    """Check the broker, then supervise ``processes`` copies of ``command`` until SIGINT/SIGTERM.

    Args:
        kernel: The app's async kernel.
        command: One worker process's command line (``worker_command``).
        processes: How many to keep running.
        concurrency: Tasks run at once per process (None: the app's default), for the log line.
        min_uptime: See ``Supervisor``.

    Returns:
        0 once every process has drained after a signal; 1 when one failed while stopping.

    Raises:
        CliError: With status 2 for a ``memory://`` app (its queue lives in one process); with
            status 1 when the supervisor gave up on processes failing at startup.
    """
    if scheme_of(kernel.url) == "memory":
        raise CliError("run --processes needs a broker that processes share: memory:// lives inside one process; "
                       "use the SQLite default (sqlite:///...) or redis://, or drop --processes", USAGE)
    run_with_components(kernel, _check_broker)
    _log_serving(kernel, concurrency, processes)
    supervisor = Supervisor(command, processes, min_uptime)
    status = supervisor.run()
    if supervisor.gave_up:
        raise CliError(f"{supervisor.gave_up}; run `{' '.join(command[2:])}` to see why")
    return status
