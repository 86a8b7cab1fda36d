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
- throughput: ``--tasks`` sequential ``await noop.add_task()``. "until all are done" is timed from
  the first enqueue until every task is finished: the last 100 tasks' results are awaited, then one
  SQL count of the app's final records must equal ``--tasks`` (0 is printed if it does not).
  "sequential add_task" goes on until every final record has been read back, with
  ``app.wait_result`` on each uuid in order (each checked to be ``success``). tasks/s = tasks /
  that time; enqueues/s = tasks / the add_task loop alone;
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
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (shared with bench/redis_throughput.py)
    ROUND_TRIP_ROWS,
    THROUGHPUT_ROWS,
    Row,
    add_run_options,
    add_size_options,
    check,
    commit,
    latency,
    machine_lines,
    print_command_and_json,
    print_summary,
    repeat_runs,
    round_trips,
    set_plugin_autoload,
    start_worker,
    stop_worker,
    throughput,
    verdict,
    warm_up,
)
from sqlite_worker_app import make_app  # noqa: E402  (the worker's module: the same tasks, same names)

from qtasks.asyncio import QueueTasks  # noqa: E402
from qtasks.builtin_plugins.sqlite_watch import IDLE_INTERVAL  # noqa: E402
from qtasks.kernel.handles import AsyncTask  # noqa: E402

WORKER = Path(__file__).resolve().with_name("sqlite_worker_app.py")
APP_NAME = "bench-sqlite"
TARGET_RATE = 1_000.0
TARGET_PICKUP_MS = 50.0
TARGET_IDLE_CPU = 1.0
TICK = os.sysconf("SC_CLK_TCK")


# -- worker process -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5); [0] is field 3


# -- one run ------------------------------------------------------------------------------------


async def finished(app: QueueTasks) -> int:
    """How many final records the file holds for the app (a count in SQL: there is no API for it)."""
    query = "SELECT COUNT(*) FROM qtasks_records WHERE app = ? AND final = 1"
    return int(await app.storage.database.read(lambda c: c.execute(query, (app.name,)).fetchone()[0]))


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
        proc = start_worker(WORKER, url, APP_NAME, args.concurrency)
        try:
            await warm_up(app, noop, proc, args.warmup, finished)
            total, enqueue, done_meanwhile, done = await throughput(app, noop, args.tasks, finished)
            trips = await round_trips(noop, args.roundtrips)
            picks = await pickups(stamp, args.pickups, args.pickup_pause)
            idle, own_idle = await idle_cpu(proc.pid, args.idle_seconds)
        finally:
            worker = await anyio.to_thread.run_sync(stop_worker, proc)
            await app.close()
    return {
        "done_rate": args.tasks / done if done else 0.0,
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


# -- report -------------------------------------------------------------------------------------


def file_system(folder: str) -> str:
    """Type and mount point of the file system holding ``folder`` (its longest match in /proc/mounts)."""
    path = os.path.realpath(folder).rstrip("/") + "/"
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    mount, kind = max((m for m in mounts if path.startswith(m[0].rstrip("/") + "/")), key=lambda m: len(m[0]), default=("?", "?"))
    return f"{kind} at {mount}"


def environment(folder: str) -> str:
    return (
        f"{machine_lines(('qtasks', 'anyio'))}\n"
        f"sqlite:  library {sqlite3.sqlite_version}; database files under {folder} ({file_system(folder)})\n"
        f"commit:  {commit()}"
    )


ROWS = (  # key, whether higher is better, title (formatted with the options), number format
    Row("done_rate", True, "end to end, tasks/s ({a.tasks:,} add_task, until all done)", ",.0f"),
    Row("rate", True, "end to end, tasks/s, every result read back in order", ",.0f"),
    *THROUGHPUT_ROWS[1:],
    Row("worker_rate", True, "worker, tasks/s finished while the producer enqueued", ",.0f"),
    *ROUND_TRIP_ROWS,
    Row("pickup_p50_ms", False, "pickup p50, ms ({a.pickups} on an idle worker)", ".1f"),
    Row("pickup_max_ms", False, "pickup max, ms ({a.pickups} on an idle worker)", ".1f"),
    Row("idle_cpu_percent", False, "idle worker, % of one core ({a.idle_seconds:g} s)", ".2f"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", default=None, help="folder for the per-run temporary directory (default: the system's temp folder)")
    add_size_options(parser)
    parser.add_argument("--pickups", type=int, default=20, help="pickup-latency tasks per run, each after an idle pause (default 20)")
    parser.add_argument("--pickup-pause", type=float, default=0.5, help="idle seconds before each pickup task, plus 0-20 ms at random (default 0.5)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="seconds the idle worker's CPU is measured (default 10)")
    add_run_options(parser, repeat=1)
    args = parser.parse_args(argv)
    if min(args.tasks, args.roundtrips, args.pickups, args.concurrency, args.repeat, args.warmup) < 1 or min(args.pickup_pause, args.idle_seconds) <= 0:
        parser.error("--tasks, --roundtrips, --pickups, --concurrency, --repeat and --warmup must be at least 1; the seconds more than 0")
    set_plugin_autoload(args.entry_points)

    print(environment(args.dir or tempfile.gettempdir()))
    print(f"\nSQLite (WAL, synchronous=normal), async tasks, 1 worker process (concurrency {args.concurrency}), "
          f"1 producer process; fresh file per run; {args.warmup} warmup tasks per run, {args.repeat} run(s)")
    runs = repeat_runs(
        args.repeat,
        lambda: anyio.run(one_run, args),
        lambda run: f"{run['done_rate']:,.0f} tasks/s until all done, {run['rate']:,.0f} with the read-back, "
                    f"{run['enqueue_rate']:,.0f} enqueues/s, worker "
                    f"{run['worker_rate']:,.0f} tasks/s ({run['done_meanwhile']:,} done when the last enqueue returned); round trip "
                    f"p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms, max {run['max_ms']:.3f} ms; pickup "
                    f"p50 {run['pickup_p50_ms']:.1f} ms, max {run['pickup_max_ms']:.1f} ms; idle worker "
                    f"{run['idle_cpu_percent']:.2f}% CPU (producer {run['producer_idle_cpu_percent']:.2f}%); worker {run['worker']}",
    )
    s = print_summary(runs, ROWS, args, width=56)
    print(f"targets (by the median): >= {TARGET_RATE:,.0f} tasks/s until all done: {verdict(s['done_rate_median'] >= TARGET_RATE)} "
          f"(with the read-back: {verdict(s['rate_median'] >= TARGET_RATE)}); "
          f"pickup max <= {TARGET_PICKUP_MS:g} ms: {verdict(s['pickup_max_ms_median'] <= TARGET_PICKUP_MS)} "
          f"(p50: {verdict(s['pickup_p50_ms_median'] <= TARGET_PICKUP_MS)}); idle worker < {TARGET_IDLE_CPU:g}% CPU: "
          f"{verdict(s['idle_cpu_percent_median'] < TARGET_IDLE_CPU)}")

    print_command_and_json("bench/sqlite_throughput.py", [
        "--tasks", str(args.tasks), "--roundtrips", str(args.roundtrips), "--pickups", str(args.pickups),
        "--pickup-pause", f"{args.pickup_pause:g}", "--idle-seconds", f"{args.idle_seconds:g}", "--concurrency", str(args.concurrency),
        "--repeat", str(args.repeat), "--warmup", str(args.warmup), *(["--dir", args.dir] * (args.dir is not None)),
    ], args, s, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
