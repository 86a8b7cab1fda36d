"""Helpers shared by the Redis and SQLite throughput benchmarks (``bench/*_throughput.py``)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.kernel.handles import AsyncTask

__all__ = [
    "ROUND_TRIP_ROWS",
    "STOP_TIMEOUT",
    "THROUGHPUT_ROWS",
    "Row",
    "Throughput",
    "add_run_options",
    "add_size_options",
    "check",
    "commit",
    "git",
    "latency",
    "machine_lines",
    "print_command_and_json",
    "print_summary",
    "repeat_runs",
    "round_trips",
    "set_plugin_autoload",
    "start_worker",
    "stop_worker",
    "summary",
    "throughput",
    "verdict",
    "warm_up",
]

STOP_TIMEOUT = 30.0
"""Seconds a worker process may take to drain and exit after SIGTERM before it is killed."""


# -- worker process -----------------------------------------------------------------------------


def start_worker(script: Path, url: str, app_name: str, concurrency: int) -> subprocess.Popen[bytes]:
    """Start a worker process running ``script``.

    Args:
        script: The worker module (``bench/*_worker_app.py``), run with this interpreter.
        url: The broker URL, the script's first argument.
        app_name: The app name, the script's second argument.
        concurrency: The worker's concurrency, the script's third argument.

    Returns:
        The running process.
    """
    return subprocess.Popen([sys.executable, str(script), url, app_name, str(concurrency)])


def stop_worker(proc: subprocess.Popen[bytes]) -> str:
    """Stop a worker process: SIGTERM, wait up to ``STOP_TIMEOUT`` s for the drain, else SIGKILL.

    Args:
        proc: The worker process.

    Returns:
        How it ended, for the run's line: its exit code and how long the drain took, that it was
        killed, or that it had already exited.
    """
    if proc.poll() is not None:
        return f"had already exited ({proc.returncode})"
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f"killed: no exit {STOP_TIMEOUT:.0f} s after SIGTERM"
    return f"exit {code} {time.perf_counter() - started:.2f} s after SIGTERM"


# -- one run ------------------------------------------------------------------------------------


class Throughput(NamedTuple):
    """What :func:`throughput` measured."""

    seconds: float
    """From the first enqueue until every task's final record was read."""
    enqueue_seconds: float
    """The add_task loop alone."""
    done_meanwhile: int | None
    """Tasks the worker had finished when the last enqueue returned (``None`` when not counted)."""
    done_seconds: float | None = None
    """From the first enqueue until the count of final records reached ``tasks`` (``None`` when not counted)."""


def check(record: Any, what: str) -> None:
    """Raise unless ``record`` is a final record of a successful task.

    Args:
        record: What ``add_task(timeout=...)`` or ``app.wait_result`` returned.
        what: The task, for the error message (``"round trip 3 of 200"``).

    Raises:
        RuntimeError: No record came in time, or the task did not succeed.
    """
    if record is None:
        raise RuntimeError(f"{what}: no final record in time")
    if record.status != "success":
        raise RuntimeError(f"{what}: status {record.status!r}, not 'success'")


async def warm_up(
    app: QueueTasks,
    noop: AsyncTask,
    proc: subprocess.Popen[bytes],
    count: int,
    finished: Callable[[QueueTasks], Awaitable[int]] | None = None,
) -> None:
    """Run one task that proves the worker serves, then ``count - 1`` more, all waited for.

    Args:
        app: The producer app.
        noop: The no-op task of ``app``.
        proc: The worker process, named in the error when it ran nothing.
        count: Tasks in all, at least the first one.
        finished: Passed on to :func:`throughput` for the ``count - 1`` tasks.

    Raises:
        RuntimeError: The worker ran no task within 30 s, or a task failed.
    """
    first = await noop.add_task(timeout=30)
    if first is None:
        state = "running" if proc.poll() is None else f"exited with {proc.returncode}"
        raise RuntimeError(f"the worker ran no task within 30 s (worker process {state})")
    check(first, "warmup task")
    await throughput(app, noop, max(count - 1, 0), finished)


async def throughput(
    app: QueueTasks,
    noop: AsyncTask,
    tasks: int,
    finished: Callable[[QueueTasks], Awaitable[int]] | None = None,
) -> Throughput:
    """Enqueue ``tasks`` no-op tasks one after the other, then wait for each final record in order.

    Args:
        app: The producer app.
        noop: The no-op task of ``app``.
        tasks: How many tasks.
        finished: If given, counts the app's final records; it is called before the first enqueue
            and when the last enqueue returns, and the difference is ``done_meanwhile``. It then
            also gives ``done_seconds``: once the last 100 tasks are final, a count equal to
            ``tasks`` stops that clock, before the records are read back one by one.

    Returns:
        The total and the enqueue-only seconds, and the tasks finished meanwhile (``None``
        without ``finished``).

    Raises:
        RuntimeError: A task failed or its record did not come within 60 s.
        TimeoutError: All the records took longer than ``max(60, tasks / 100)`` s.
    """
    uuids = []
    before = 0 if finished is None else await finished(app)
    start = time.perf_counter()
    for _ in range(tasks):
        uuids.append((await noop.add_task()).uuid)
    enqueued = time.perf_counter()
    done_meanwhile = None if finished is None else await finished(app) - before
    done_at = None
    with anyio.fail_after(max(60.0, tasks / 100)):
        if finished is not None:
            # all done: the last tasks (FIFO: the others ended before them), then a count confirms it
            for task_uuid in uuids[-100:]:
                await app.wait_result(task_uuid, 60.0)
            if await finished(app) - before >= tasks:
                done_at = time.perf_counter()
        for index, task_uuid in enumerate(uuids):
            check(await app.wait_result(task_uuid, 60.0), f"task {index + 1} of {tasks}")
    return Throughput(time.perf_counter() - start, enqueued - start, done_meanwhile, None if done_at is None else done_at - start)


async def round_trips(noop: AsyncTask, count: int) -> list[float]:
    """Time ``count`` sequential ``await noop.add_task(timeout=10)``.

    Args:
        noop: The no-op task of the producer app.
        count: How many round trips.

    Returns:
        Seconds per round trip, in order.

    Raises:
        RuntimeError: A task failed or its record did not come within 10 s.
    """
    times = []
    for index in range(count):
        start = time.perf_counter()
        record = await noop.add_task(timeout=10)
        times.append(time.perf_counter() - start)
        check(record, f"round trip {index + 1} of {count}")
    return times


def latency(times: list[float]) -> dict[str, float]:
    """Percentiles of some durations, in milliseconds.

    Args:
        times: Durations in seconds, at least one.

    Returns:
        ``p50_ms``, ``p99_ms`` (inclusive method; the only value when there is one) and ``max_ms``.
    """
    ms = sorted(t * 1000 for t in times)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return {"p50_ms": statistics.median(ms), "p99_ms": p99, "max_ms": ms[-1]}


# -- report -------------------------------------------------------------------------------------


def git(*words: str) -> str:
    """Run ``git`` in the ``bench`` folder.

    Args:
        *words: Its arguments.

    Returns:
        Its standard output, stripped.

    Raises:
        OSError: There is no ``git``.
        subprocess.CalledProcessError: It failed (not a git checkout, for one).
    """
    return subprocess.run(["git", *words], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent).stdout.strip()


def commit() -> str:
    """The checkout's commit, for the environment lines.

    Returns:
        The short hash of HEAD, marked when tracked files changed, or why it is unknown.
    """
    try:
        return git("rev-parse", "--short", "HEAD") + (" (tracked files changed)" if git("status", "--porcelain", "-uno") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def machine_lines(packages: Sequence[str], notes: Sequence[str] = ()) -> str:
    """The ``machine:``, ``load:`` and ``python:`` lines that open a benchmark's output.

    Args:
        packages: Distributions whose versions the ``python:`` line names, in order.
        notes: More items at the end of the ``python:`` line, each after ``"; "``.

    Returns:
        The three lines, joined by newlines, with no newline at the end.
    """
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in packages)
    python = "; ".join((f"{platform.python_implementation()} {platform.python_version()}", versions, *notes))
    return (
        f"machine: {os.cpu_count()} CPU(s); {platform.system()} {platform.release()}\n"
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start\n"
        f"python:  {python}"
    )


class Row(NamedTuple):
    """One figure of the best/median table."""

    key: str
    """The run's key (``rate``, ``p50_ms``...)."""
    higher: bool
    """Whether a higher value is better (rates) or a lower one (latencies, CPU)."""
    title: str
    """The row's title, formatted with the options as ``a`` (``{a.tasks:,}``)."""
    form: str
    """The number format (``",.0f"``)."""


THROUGHPUT_ROWS = (
    Row("rate", True, "end to end, tasks/s ({a.tasks:,} sequential add_task)", ",.0f"),
    Row("enqueue_rate", True, "producer only, enqueues/s (the add_task loop)", ",.0f"),
)
"""The rows of :func:`throughput`'s rates."""

ROUND_TRIP_ROWS = (
    Row("p50_ms", False, "round trip p50, ms ({a.roundtrips} add_task(timeout=10))", ".3f"),
    Row("p99_ms", False, "round trip p99, ms ({a.roundtrips} add_task(timeout=10))", ".3f"),
    Row("max_ms", False, "round trip max, ms ({a.roundtrips} add_task(timeout=10))", ".3f"),
)
"""The rows of :func:`round_trips`' latencies."""


def summary(runs: list[dict[str, Any]], rows: Iterable[Row]) -> dict[str, float]:
    """Best and median over the runs of each row's figure.

    Args:
        runs: One dict a run, holding every row's key.
        rows: The figures; best is the highest where ``higher``, else the lowest.

    Returns:
        ``<key>_best`` and ``<key>_median`` for each row, in the rows' order.
    """
    out = {}
    for row in rows:
        values = [r[row.key] for r in runs]
        out[f"{row.key}_best"] = max(values) if row.higher else min(values)
        out[f"{row.key}_median"] = statistics.median(values)
    return out


def print_summary(runs: list[dict[str, Any]], rows: Sequence[Row], args: argparse.Namespace, width: int) -> dict[str, float]:
    """Print the best/median table of the runs after an empty line: a header, then one line a row.

    Args:
        runs: One dict a run, holding every row's key.
        rows: The figures, in order; see :func:`summary`.
        args: The options, for the titles.
        width: The title column's width.

    Returns:
        What :func:`summary` returns, for the targets line and the JSON.
    """
    s = summary(runs, rows)
    print(f"\n{'':<{width}}{'best':>10}{'median':>10}")
    for row in rows:
        print(f"{row.title.format(a=args):<{width}}{s[f'{row.key}_best']:>10{row.form}}{s[f'{row.key}_median']:>10{row.form}}")
    return s


def verdict(met: bool) -> str:
    """``"met"`` or ``"NOT met"``, for the targets line.

    Args:
        met: Whether the target was met.

    Returns:
        The word for it.
    """
    return "met" if met else "NOT met"


# -- options and the runs -----------------------------------------------------------------------


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--tasks`` and ``--roundtrips`` (the work a run does).

    Args:
        parser: The script's parser.
    """
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks per throughput run (default 10000)")
    parser.add_argument("--roundtrips", type=int, default=200, help="sequential round trips per run (default 200)")


def add_run_options(parser: argparse.ArgumentParser, repeat: int) -> None:
    """Add ``--concurrency``, ``--repeat``, ``--warmup``, ``--entry-points`` and ``--json``.

    Args:
        parser: The script's parser.
        repeat: The default of ``--repeat``.
    """
    parser.add_argument("--concurrency", type=int, default=10, help="worker concurrency (default 10)")
    parser.add_argument("--repeat", type=int, default=repeat, help=f"runs; best and median are shown (default {repeat})")
    parser.add_argument("--warmup", type=int, default=200, help="tasks run before timing, the first proving the worker is up (default 200)")
    parser.add_argument("--entry-points", action="store_true",
                        help="also load third-party plugins of the 'qtasks' entry-point group (default: builtins only)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object at the end")


def set_plugin_autoload(entry_points: bool) -> None:
    """Unless ``--entry-points`` was given, load only the builtin plugins, here and in the workers.

    Args:
        entry_points: Whether third-party plugins of the ``qtasks`` entry-point group load too;
            if not, ``QTASKS_DISABLE_PLUGIN_AUTOLOAD=1`` is set, which the worker processes inherit.
    """
    if not entry_points:
        os.environ["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def repeat_runs(count: int, run: Callable[[], dict[str, Any]], line: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """Do ``count`` runs, a garbage collection before each, and print a line after each.

    Args:
        count: How many runs.
        run: Does one run and returns its figures.
        line: What the line says after ``"  run <n>: "``.

    Returns:
        Each run's figures, in order.
    """
    runs = []
    for index in range(count):
        gc.collect()
        result = run()
        runs.append(result)
        print(f"  run {index + 1}: {line(result)}", flush=True)
    return runs


def print_command_and_json(
    script: str, options: list[str], args: argparse.Namespace, s: dict[str, float], runs: list[dict[str, Any]]
) -> None:
    """Print the command that repeats the runs and, with ``--json``, the figures as one JSON object.

    Args:
        script: The script's path from the repository root (``bench/redis_throughput.py``).
        options: Its options, but for ``--entry-points`` and ``--json``, which are added from ``args``.
        args: The options; ``vars(args)`` is the JSON's ``options``.
        s: What :func:`print_summary` returned, the JSON's ``summary``.
        runs: Each run's figures, the JSON's ``runs``.
    """
    command = [".venv/bin/python", script, *options] + ["--entry-points"] * args.entry_points + ["--json"] * args.json
    print(f"\ncommand: {shlex.join(command)}")
    if args.json:
        print(json.dumps({"options": vars(args), "summary": s, "runs": runs}))
