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
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import redis.asyncio as redis_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (shared with bench/sqlite_throughput.py)
    ROUND_TRIP_ROWS,
    THROUGHPUT_ROWS,
    add_run_options,
    add_size_options,
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
from redis_worker_app import make_app  # noqa: E402  (the worker's module: the same task, same name)

WORKER = Path(__file__).resolve().with_name("redis_worker_app.py")
TARGET_RATE = 4_000.0
TARGET_P50_MS = 1.0
ROWS = THROUGHPUT_ROWS + ROUND_TRIP_ROWS


# -- one run ------------------------------------------------------------------------------------


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
    proc = start_worker(WORKER, url, app_name, concurrency)
    try:
        await warm_up(app, noop, proc, warmup)
        total, enqueue, _ = await throughput(app, noop, tasks)
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
    return f"{machine_lines(('qtasks', 'redis', 'anyio'), (parser,))}\nredis:   server {anyio.run(server_version, url)} at {url}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/14", help="Redis URL (default redis://127.0.0.1:6379/14)")
    add_size_options(parser)
    add_run_options(parser, repeat=3)
    args = parser.parse_args(argv)
    if min(args.tasks, args.roundtrips, args.concurrency, args.repeat, args.warmup) < 1:
        parser.error("--tasks, --roundtrips, --concurrency, --repeat and --warmup must be at least 1")
    set_plugin_autoload(args.entry_points)

    print(environment(args.url))
    print(f"\nRedis, async no-op task, 1 worker process (concurrency {args.concurrency}), 1 producer; "
          f"{args.warmup} warmup tasks per run, {args.repeat} run(s)")
    runs = repeat_runs(
        args.repeat,
        lambda: anyio.run(one_run, args.url, args.tasks, args.roundtrips, args.concurrency, args.warmup),
        lambda run: f"{run['rate']:,.0f} tasks/s, {run['enqueue_rate']:,.0f} enqueues/s; round trip "
                    f"p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms, max {run['max_ms']:.3f} ms; "
                    f"worker {run['worker']}; keys left by flush_all (deleted): {', '.join(run['left_after_flush']) or 'none'}",
    )
    s = print_summary(runs, ROWS, args, width=52)
    print(f"targets: >= {TARGET_RATE:,.0f} tasks/s: {verdict(s['rate_best'] >= TARGET_RATE)} by the best run, "
          f"{verdict(s['rate_median'] >= TARGET_RATE)} by the median; p50 <= {TARGET_P50_MS:g} ms: "
          f"{verdict(s['p50_ms_best'] <= TARGET_P50_MS)} by the best run, {verdict(s['p50_ms_median'] <= TARGET_P50_MS)} by the median")

    print_command_and_json("bench/redis_throughput.py", ["--url", args.url, "--tasks", str(args.tasks),
                           "--roundtrips", str(args.roundtrips), "--concurrency", str(args.concurrency),
                           "--repeat", str(args.repeat), "--warmup", str(args.warmup)], args, s, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
