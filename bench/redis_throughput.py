"""Redis benchmark: no-op task throughput and round-trip latency, one worker process and one producer.

Not a test: it prints figures. Needs a Redis server; run from the repository root::

    .venv/bin/python bench/redis_throughput.py                          # defaults: 10,000 tasks, 200 round trips, 3 runs
    .venv/bin/python bench/redis_throughput.py --tasks 2000 --repeat 1  # a quick look
    .venv/bin/python bench/redis_throughput.py --url redis://host:6379/3 --json

Each run starts a worker process (``bench/redis_worker_app.py``: ``app.serve(concurrency)`` of an
async app with the ``noop`` task) under a fresh app name, so no key is shared between runs. The
producer, an async app (``qtasks.asyncio.QueueTasks``) in this process, then:

- waits for the worker: one ``await noop.add_task(timeout=30)`` that returns only once a worker
  ran it (no sleeps), then runs ``--warmup - 1`` more tasks to warm both sides;
- throughput: ``--tasks`` sequential ``await noop.add_task()``, timed from the first enqueue until
  every task's final record is available (``app.wait_result`` on each uuid in order; most are
  already final by then). tasks/s = tasks / that time; enqueues/s = tasks / the add_task loop alone;
- round trip: ``--roundtrips`` sequential ``await noop.add_task(timeout=10)`` (enqueue, the worker
  runs it, the final record is pushed back), each timed with ``time.perf_counter``.

Then the worker gets SIGTERM (it drains and exits; killed after 30 s) and ``app.flush_all()`` drops
the run's keys; any key it leaves under the app's prefix is named in the output, then deleted, so
Redis is left as found. Targets (issue):
at least 4,000 tasks/s end to end, round trip p50 at most 1 ms.
"""

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
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import redis.asyncio as redis_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redis_worker_app import make_app  # noqa: E402  (the worker's module: the same task, same name)

from qtasks.asyncio import QueueTasks  # noqa: E402
from qtasks.kernel.handles import AsyncTask  # noqa: E402

WORKER = Path(__file__).resolve().with_name("redis_worker_app.py")
STOP_TIMEOUT = 30.0
TARGET_RATE = 4_000.0
TARGET_P50_MS = 1.0


# -- worker process -----------------------------------------------------------------------------


def start_worker(url: str, app_name: str, concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), url, app_name, str(concurrency)])


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


async def throughput(app: QueueTasks, noop: AsyncTask, tasks: int) -> tuple[float, float]:
    """``tasks`` sequential enqueues, then each final record in order; return (total s, enqueue s)."""
    uuids = []
    start = time.perf_counter()
    for _ in range(tasks):
        uuids.append((await noop.add_task()).uuid)
    enqueued = time.perf_counter()
    with anyio.fail_after(max(60.0, tasks / 100)):
        for index, task_uuid in enumerate(uuids):
            check(await app.wait_result(task_uuid, 60.0), f"task {index + 1} of {tasks}")
    return time.perf_counter() - start, enqueued - start


async def round_trips(noop: AsyncTask, count: int) -> list[float]:
    """Seconds per ``await noop.add_task(timeout=10)``, one after the other."""
    times = []
    for index in range(count):
        start = time.perf_counter()
        record = await noop.add_task(timeout=10)
        times.append(time.perf_counter() - start)
        check(record, f"round trip {index + 1} of {count}")
    return times


async def remove_leftovers(url: str, app_name: str) -> list[str]:
    """Delete the keys still under the app's prefix (``qtasks:{name}:``) after ``flush_all``; return
    their names after the prefix. The name is this run's own, so nothing else is touched."""
    prefix = f"qtasks:{{{app_name}}}:"
    client = redis_asyncio.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.unlink(*keys)
        return sorted(key.decode()[len(prefix):] for key in keys)
    finally:
        await client.aclose()


async def one_run(url: str, tasks: int, roundtrips: int, concurrency: int, warmup: int) -> dict[str, Any]:
    app_name = f"bench-redis-{uuid.uuid4().hex[:12]}"
    app, noop = make_app(url, app_name)
    proc = start_worker(url, app_name, concurrency)
    try:
        await warm_up(app, noop, proc, warmup)
        total, enqueue = await throughput(app, noop, tasks)
        trips = await round_trips(noop, roundtrips)
    finally:
        worker = await anyio.to_thread.run_sync(stop_worker, proc)
        try:
            await app.flush_all()
        finally:
            await app.close()
            left = await remove_leftovers(url, app_name)
    return {
        "app": app_name,
        "rate": tasks / total,
        "enqueue_rate": tasks / enqueue,
        "seconds": total,
        "enqueue_seconds": enqueue,
        **latency(trips),
        "worker": worker,
        "left_after_flush": left,
    }


def latency(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return {"p50_ms": statistics.median(ms), "p99_ms": p99, "max_ms": ms[-1]}


# -- report -------------------------------------------------------------------------------------


async def server_version(url: str) -> str:
    client = redis_asyncio.from_url(url)
    try:
        info = await client.info("server")
        return f"{info.get('redis_version', '?')} ({info.get('redis_mode', '?')}, {info.get('os', '?')})"
    finally:
        await client.aclose()


def environment(url: str) -> str:
    try:
        import hiredis
        parser = f"hiredis {getattr(hiredis, '__version__', '?')} installed"
    except ImportError:
        parser = "hiredis not installed (pure-Python parser)"
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("qtasks", "redis", "anyio"))
    return (
        f"machine: {os.cpu_count()} CPU(s); {platform.system()} {platform.release()}\n"
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start\n"
        f"python:  {platform.python_implementation()} {platform.python_version()}; {versions}; {parser}\n"
        f"redis:   server {anyio.run(server_version, url)} at {url}"
    )


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Best and median over the runs: highest rates, lowest latencies."""
    out = {}
    for key, higher_is_better in (("rate", True), ("enqueue_rate", True), ("p50_ms", False), ("p99_ms", False), ("max_ms", False)):
        values = [r[key] for r in runs]
        out[f"{key}_best"] = max(values) if higher_is_better else min(values)
        out[f"{key}_median"] = statistics.median(values)
    return out


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/14", help="Redis URL (default redis://127.0.0.1:6379/14)")
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks per throughput run (default 10000)")
    parser.add_argument("--roundtrips", type=int, default=200, help="sequential round trips per run (default 200)")
    parser.add_argument("--concurrency", type=int, default=10, help="worker concurrency (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; best and median are shown (default 3)")
    parser.add_argument("--warmup", type=int, default=200, help="tasks run before timing, the first proving the worker is up (default 200)")
    parser.add_argument("--entry-points", action="store_true",
                        help="also load third-party plugins of the 'qtasks' entry-point group (default: builtins only)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object at the end")
    args = parser.parse_args(argv)
    if min(args.tasks, args.roundtrips, args.concurrency, args.repeat, args.warmup) < 1:
        parser.error("--tasks, --roundtrips, --concurrency, --repeat and --warmup must be at least 1")
    if not args.entry_points:
        os.environ["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # inherited by the worker process

    print(environment(args.url))
    print(f"\nRedis, async no-op task, 1 worker process (concurrency {args.concurrency}), 1 producer; "
          f"{args.warmup} warmup tasks per run, {args.repeat} run(s)")
    runs = []
    for index in range(args.repeat):
        gc.collect()
        run = anyio.run(one_run, args.url, args.tasks, args.roundtrips, args.concurrency, args.warmup)
        runs.append(run)
        print(f"  run {index + 1}: {run['rate']:,.0f} tasks/s, {run['enqueue_rate']:,.0f} enqueues/s; round trip "
              f"p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms, max {run['max_ms']:.3f} ms; "
              f"worker {run['worker']}; keys left by flush_all (deleted): {', '.join(run['left_after_flush']) or 'none'}",
              flush=True)
    s = summary(runs)

    print(f"\n{'':<52}{'best':>10}{'median':>10}")
    print(f"{f'end to end, tasks/s ({args.tasks:,} sequential add_task)':<52}{s['rate_best']:>10,.0f}{s['rate_median']:>10,.0f}")
    print(f"{'producer only, enqueues/s (the add_task loop)':<52}{s['enqueue_rate_best']:>10,.0f}{s['enqueue_rate_median']:>10,.0f}")
    for key, label in (("p50", "p50"), ("p99", "p99"), ("max", "max")):
        title = f"round trip {label}, ms ({args.roundtrips} add_task(timeout=10))"
        print(f"{title:<52}{s[f'{key}_ms_best']:>10.3f}{s[f'{key}_ms_median']:>10.3f}")
    print(f"targets: >= {TARGET_RATE:,.0f} tasks/s: {verdict(s['rate_best'] >= TARGET_RATE)} by the best run, "
          f"{verdict(s['rate_median'] >= TARGET_RATE)} by the median; p50 <= {TARGET_P50_MS:g} ms: "
          f"{verdict(s['p50_ms_best'] <= TARGET_P50_MS)} by the best run, {verdict(s['p50_ms_median'] <= TARGET_P50_MS)} by the median")

    command = [".venv/bin/python", "bench/redis_throughput.py", "--url", args.url, "--tasks", str(args.tasks),
               "--roundtrips", str(args.roundtrips), "--concurrency", str(args.concurrency),
               "--repeat", str(args.repeat), "--warmup", str(args.warmup)]
    command += ["--entry-points"] * args.entry_points + ["--json"] * args.json
    print(f"\ncommand: {shlex.join(command)}")
    if args.json:
        print(json.dumps({"options": vars(args), "summary": s, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
