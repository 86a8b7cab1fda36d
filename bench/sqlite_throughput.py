"""SQLite benchmark: no-op throughput, round trips, cross-process pickup latency and idle CPU of a worker.

Not a test: it prints figures. Needs nothing but the file system; run from the repository root::

    .venv/bin/python bench/sqlite_throughput.py                          # defaults: 10,000 tasks, 200 round trips, 1 run
    .venv/bin/python bench/sqlite_throughput.py --repeat 3               # median (and best) of 3 runs
    .venv/bin/python bench/sqlite_throughput.py --tasks 2000 --idle-seconds 3 --json

Each run makes a temporary directory (under ``--dir``, default the system's), points both sides at
a fresh ``sqlite:////<dir>/bench.sqlite3`` (WAL; it is deleted with the directory after the run),
and starts a worker process (``bench/sqlite_worker_app.py``: ``app.serve(concurrency)`` of an async
app with the tasks ``noop`` and ``stamp``). The producer, an async app (``qtasks.asyncio.QueueTasks``)
on the same file in this process, then:

- waits for the worker: one ``await noop.add_task(timeout=30)`` that returns only once a worker
  ran it (no sleeps), then runs ``--warmup - 1`` more tasks to warm both sides;
- throughput: ``--tasks`` sequential ``await noop.add_task()``, timed from the first enqueue until
  every task's final record is available (``app.wait_result`` on each uuid in order; most are
  already final by then). tasks/s = tasks / that time; enqueues/s = tasks / the add_task loop alone;
  worker tasks/s = final records counted (one SQL count) when the add_task loop ends / its duration,
  i.e. how fast the worker finished tasks while they arrived. The read-back is sequential, one
  ``wait_result`` (a read on the reader thread, about 0.5 ms here) per task;
- round trip: ``--roundtrips`` sequential ``await noop.add_task(timeout=10)`` (enqueue, the worker
  process runs it, this process sees the final record), each timed with ``time.perf_counter``;
- pickup: 1 s with no work, then ``--pickups`` times ``await stamp.add_task(time.time(), timeout=10)``
  with ``--pickup-pause`` s between, so the worker is idle each time. The task returns
  ``time.time()`` at its start minus the argument: enqueue commit, the worker noticing it (inotify
  on Linux; elsewhere a polling thread at 20 ms when idle), claim and dispatch. Each pause gets a
  random extra 0-20 ms (one polling interval), so that with the polling watcher the enqueues do
  not all land at the same point of its cycle;
- idle CPU: 1 s settle on the now empty queue, then the worker's utime + stime from
  ``/proc/<pid>/stat`` over ``--idle-seconds``, as a percent of one core (resolution: one clock
  tick, usually 10 ms, over the window). This process's own CPU over that window (its app is open
  but waits for nothing) is shown beside it.

Then the worker gets SIGTERM (it drains and exits; killed after 30 s), the producer app closes and
the directory is removed. Targets (issue): at least 1,000 tasks/s end to end, pickup at most 50 ms,
an idle worker under 1% of a core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sqlite_worker_app import make_app  # noqa: E402  (the worker's module: the same tasks, same names)

from qtasks.asyncio import QueueTasks  # noqa: E402
from qtasks.builtin_plugins.sqlite_watch import IDLE_INTERVAL  # noqa: E402
from qtasks.kernel.handles import AsyncTask  # noqa: E402

WORKER = Path(__file__).resolve().with_name("sqlite_worker_app.py")
APP_NAME = "bench-sqlite"
STOP_TIMEOUT = 30.0
TARGET_RATE = 1_000.0
TARGET_PICKUP_MS = 50.0
TARGET_IDLE_CPU = 1.0
TICK = os.sysconf("SC_CLK_TCK")


# -- worker process -----------------------------------------------------------------------------


def start_worker(url: str, concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), url, APP_NAME, str(concurrency)])


def stop_worker(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, wait up to ``STOP_TIMEOUT`` s for the drain, else SIGKILL; return how it ended."""
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


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5); [0] is field 3


# -- one run ------------------------------------------------------------------------------------


def check(record: Any, what: str) -> None:
    if record is None:
        raise RuntimeError(f"{what}: no final record in time")
    if record.status != "success":
        raise RuntimeError(f"{what}: status {record.status!r}, not 'success'")


async def warm_up(app: QueueTasks, noop: AsyncTask, proc: subprocess.Popen[bytes], count: int) -> None:
    """One task that proves the worker serves, then ``count - 1`` more, all waited for."""
    first = await noop.add_task(timeout=30)
    if first is None:
        state = "running" if proc.poll() is None else f"exited with {proc.returncode}"
        raise RuntimeError(f"the worker ran no task within 30 s (worker process {state})")
    check(first, "warmup task")
    await throughput(app, noop, max(count - 1, 0))


async def finished(app: QueueTasks) -> int:
    """How many final records the file holds for the app (a count in SQL: there is no API for it)."""
    query = "SELECT COUNT(*) FROM qtasks_records WHERE app = ? AND final = 1"
    return int(await app.storage.database.read(lambda c: c.execute(query, (app.name,)).fetchone()[0]))


async def throughput(app: QueueTasks, noop: AsyncTask, tasks: int) -> tuple[float, float, int]:
    """``tasks`` sequential enqueues, then each final record in order; return (total s, enqueue s,
    tasks the worker had finished when the last enqueue returned)."""
    uuids = []
    before = await finished(app)
    start = time.perf_counter()
    for _ in range(tasks):
        uuids.append((await noop.add_task()).uuid)
    enqueued = time.perf_counter()
    done_meanwhile = await finished(app) - before
    with anyio.fail_after(max(60.0, tasks / 100)):
        for index, task_uuid in enumerate(uuids):
            check(await app.wait_result(task_uuid, 60.0), f"task {index + 1} of {tasks}")
    return time.perf_counter() - start, enqueued - start, done_meanwhile


async def round_trips(noop: AsyncTask, count: int) -> list[float]:
    """Seconds per ``await noop.add_task(timeout=10)``, one after the other."""
    times = []
    for index in range(count):
        start = time.perf_counter()
        record = await noop.add_task(timeout=10)
        times.append(time.perf_counter() - start)
        check(record, f"round trip {index + 1} of {count}")
    return times


async def pickups(stamp: AsyncTask, count: int, pause: float) -> list[float]:
    """Seconds from enqueue to task start as the worker measured them, an idle pause before each."""
    times = []
    for index in range(count):
        await anyio.sleep((1.0 if index == 0 else pause) + random.uniform(0, IDLE_INTERVAL))
        record = await stamp.add_task(time.time(), timeout=10)
        check(record, f"pickup {index + 1} of {count}")
        times.append(record.returning)
    return times


async def idle_cpu(pid: int, seconds: float) -> tuple[float, float]:
    """Percent of one core used by the worker and by this process over ``seconds`` after a 1 s settle."""
    await anyio.sleep(1.0)
    worker, own, start = cpu_seconds(pid), time.process_time(), time.monotonic()
    await anyio.sleep(seconds)
    elapsed = time.monotonic() - start
    return 100 * (cpu_seconds(pid) - worker) / elapsed, 100 * (time.process_time() - own) / elapsed


async def one_run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qtasks-bench-", dir=args.dir) as folder:
        url = f"sqlite:///{os.path.abspath(folder)}/bench.sqlite3"  # sqlite:////abs/path: the path keeps its slash
        app, noop, stamp = make_app(url, APP_NAME)
        proc = start_worker(url, args.concurrency)
        try:
            await warm_up(app, noop, proc, args.warmup)
            total, enqueue, done_meanwhile = await throughput(app, noop, args.tasks)
            trips = await round_trips(noop, args.roundtrips)
            picks = await pickups(stamp, args.pickups, args.pickup_pause)
            idle, own_idle = await idle_cpu(proc.pid, args.idle_seconds)
        finally:
            worker = await anyio.to_thread.run_sync(stop_worker, proc)
            await app.close()
    return {
        "rate": args.tasks / total,
        "enqueue_rate": args.tasks / enqueue,
        "worker_rate": done_meanwhile / enqueue,
        "done_meanwhile": done_meanwhile,
        "seconds": total,
        "enqueue_seconds": enqueue,
        **latency(trips),
        **{f"pickup_{key}": value for key, value in latency(picks).items()},
        "idle_cpu_percent": idle,
        "producer_idle_cpu_percent": own_idle,
        "worker": worker,
    }


def latency(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return {"p50_ms": statistics.median(ms), "p99_ms": p99, "max_ms": ms[-1]}


# -- report -------------------------------------------------------------------------------------


def git(*words: str) -> str:
    return subprocess.run(["git", *words], capture_output=True, text=True, check=True, cwd=WORKER.parent).stdout.strip()


def commit() -> str:
    try:
        return git("rev-parse", "--short", "HEAD") + (" (tracked files changed)" if git("status", "--porcelain", "-uno") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def file_system(folder: str) -> str:
    """Type and mount point of the file system holding ``folder`` (its longest match in /proc/mounts)."""
    path = os.path.realpath(folder).rstrip("/") + "/"
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    mount, kind = max((m for m in mounts if path.startswith(m[0].rstrip("/") + "/")), key=lambda m: len(m[0]), default=("?", "?"))
    return f"{kind} at {mount}"


def environment(folder: str) -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("qtasks", "anyio"))
    return (
        f"machine: {os.cpu_count()} CPU(s); {platform.system()} {platform.release()}\n"
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start\n"
        f"python:  {platform.python_implementation()} {platform.python_version()}; {versions}\n"
        f"sqlite:  library {sqlite3.sqlite_version}; database files under {folder} ({file_system(folder)})\n"
        f"commit:  {commit()}"
    )


ROWS = (  # key, whether higher is better, title (formatted with the options), number format
    ("rate", True, "end to end, tasks/s ({a.tasks:,} sequential add_task)", ",.0f"),
    ("enqueue_rate", True, "producer only, enqueues/s (the add_task loop)", ",.0f"),
    ("worker_rate", True, "worker, tasks/s finished while the producer enqueued", ",.0f"),
    ("p50_ms", False, "round trip p50, ms ({a.roundtrips} add_task(timeout=10))", ".3f"),
    ("p99_ms", False, "round trip p99, ms ({a.roundtrips} add_task(timeout=10))", ".3f"),
    ("max_ms", False, "round trip max, ms ({a.roundtrips} add_task(timeout=10))", ".3f"),
    ("pickup_p50_ms", False, "pickup p50, ms ({a.pickups} on an idle worker)", ".1f"),
    ("pickup_max_ms", False, "pickup max, ms ({a.pickups} on an idle worker)", ".1f"),
    ("idle_cpu_percent", False, "idle worker, % of one core ({a.idle_seconds:g} s)", ".2f"),
)


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Best and median over the runs: highest rates, lowest latencies and CPU."""
    out = {}
    for key, higher, _title, _form in ROWS:
        values = [r[key] for r in runs]
        out[f"{key}_best"] = max(values) if higher else min(values)
        out[f"{key}_median"] = statistics.median(values)
    return out


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", default=None, help="folder for the per-run temporary directory (default: the system's temp folder)")
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks per throughput run (default 10000)")
    parser.add_argument("--roundtrips", type=int, default=200, help="sequential round trips per run (default 200)")
    parser.add_argument("--pickups", type=int, default=20, help="pickup-latency tasks per run, each after an idle pause (default 20)")
    parser.add_argument("--pickup-pause", type=float, default=0.5, help="idle seconds before each pickup task, plus 0-20 ms at random (default 0.5)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="seconds the idle worker's CPU is measured (default 10)")
    parser.add_argument("--concurrency", type=int, default=10, help="worker concurrency (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; best and median are shown (default 1)")
    parser.add_argument("--warmup", type=int, default=200, help="tasks run before timing, the first proving the worker is up (default 200)")
    parser.add_argument("--entry-points", action="store_true",
                        help="also load third-party plugins of the 'qtasks' entry-point group (default: builtins only)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object at the end")
    args = parser.parse_args(argv)
    if min(args.tasks, args.roundtrips, args.pickups, args.concurrency, args.repeat, args.warmup) < 1 or min(args.pickup_pause, args.idle_seconds) <= 0:
        parser.error("--tasks, --roundtrips, --pickups, --concurrency, --repeat and --warmup must be at least 1; the seconds more than 0")
    if not args.entry_points:
        os.environ["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # inherited by the worker process

    print(environment(args.dir or tempfile.gettempdir()))
    print(f"\nSQLite (WAL, synchronous=normal), async tasks, 1 worker process (concurrency {args.concurrency}), "
          f"1 producer process; fresh file per run; {args.warmup} warmup tasks per run, {args.repeat} run(s)")
    runs = []
    for index in range(args.repeat):
        gc.collect()
        run = anyio.run(one_run, args)
        runs.append(run)
        print(f"  run {index + 1}: {run['rate']:,.0f} tasks/s, {run['enqueue_rate']:,.0f} enqueues/s, worker "
              f"{run['worker_rate']:,.0f} tasks/s ({run['done_meanwhile']:,} done when the last enqueue returned); round trip "
              f"p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms, max {run['max_ms']:.3f} ms; pickup "
              f"p50 {run['pickup_p50_ms']:.1f} ms, max {run['pickup_max_ms']:.1f} ms; idle worker "
              f"{run['idle_cpu_percent']:.2f}% CPU (producer {run['producer_idle_cpu_percent']:.2f}%); worker {run['worker']}",
              flush=True)
    s = summary(runs)

    print(f"\n{'':<56}{'best':>10}{'median':>10}")
    for key, _higher, title, form in ROWS:
        print(f"{title.format(a=args):<56}{s[f'{key}_best']:>10{form}}{s[f'{key}_median']:>10{form}}")
    print(f"targets (by the median): >= {TARGET_RATE:,.0f} tasks/s: {verdict(s['rate_median'] >= TARGET_RATE)}; "
          f"pickup max <= {TARGET_PICKUP_MS:g} ms: {verdict(s['pickup_max_ms_median'] <= TARGET_PICKUP_MS)} "
          f"(p50: {verdict(s['pickup_p50_ms_median'] <= TARGET_PICKUP_MS)}); idle worker < {TARGET_IDLE_CPU:g}% CPU: "
          f"{verdict(s['idle_cpu_percent_median'] < TARGET_IDLE_CPU)}")

    command = [".venv/bin/python", "bench/sqlite_throughput.py", "--tasks", str(args.tasks), "--roundtrips", str(args.roundtrips),
               "--pickups", str(args.pickups), "--pickup-pause", f"{args.pickup_pause:g}", "--idle-seconds", f"{args.idle_seconds:g}",
               "--concurrency", str(args.concurrency), "--repeat", str(args.repeat), "--warmup", str(args.warmup)]
    command += ["--dir", args.dir] * (args.dir is not None) + ["--entry-points"] * args.entry_points + ["--json"] * args.json
    print(f"\ncommand: {shlex.join(command)}")
    if args.json:
        print(json.dumps({"options": vars(args), "summary": s, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
