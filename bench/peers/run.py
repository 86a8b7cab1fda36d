"""Peer benchmark: QTasks against Celery, Dramatiq, Huey, Taskiq, arq, SAQ, RQ and QTasks 1.7.3 on one Redis.

Not a test: it installs each framework in its own virtualenv (.peer-venvs/<name>) and prints
figures. Needs a Redis server. From the repository root::

    .venv/bin/python bench/peers/run.py --render              # everything, median of 3 runs, docs/benchmarks.md
    .venv/bin/python bench/peers/run.py --only celery --runs 1  # one framework alone (merged into the JSON)

Every framework runs through its adapter (bench/peers/adapters/<name>.py, see its docstring for the
interface) in phases, each with a fresh worker process and a FLUSHDB of the bench database first:
no-op throughput, round trips, I/O-bound (async frameworks) and, for QTasks, batch enqueue and two
worker processes. Completion is counted the same way for all: each task INCRs one Redis key.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import PhaseError, Runner, adapter_command  # noqa: E402
from report import median_figures, merge_json, render, summary_rows  # noqa: E402
from venvs import REPO, Adapter, VenvError, discover, ensure_python, installed_versions  # noqa: E402

__all__ = ["main"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these frameworks alone (adapter names, e.g. qtasks celery)")
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks per throughput run (10,000)")
    parser.add_argument("--roundtrips", type=int, default=200, help="sequential round trips (200)")
    parser.add_argument("--io-tasks", type=int, default=2_000, help="sleep(0.01) tasks for the async frameworks (2,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported (3)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="Redis URL; its database is FLUSHed before each phase")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "peers" / "results.json", help="results file (merged by framework)")
    parser.add_argument("--render", action="store_true", help="draw the charts and update docs/benchmarks.md from the JSON")
    parser.add_argument("--render-only", action="store_true", help="measure nothing: render docs/benchmarks.md from the JSON as it is")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds before a phase fails (300: RQ needs about 150 s for 10,000 no-op tasks)")
    parser.add_argument("--python-for", action="append", default=[], metavar="NAME=PATH",
                        help="run NAME's adapter with this interpreter instead of its venv (\"<repo>\" adapters use this one by default)")
    return parser.parse_args(argv)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs{memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def phases(adapter: Adapter, args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(phase name, function of a Runner) for this adapter."""
    noop, sleep = adapter.concurrency["noop"], adapter.concurrency["sleep"]
    chosen = [("noop", lambda r: r.throughput("noop", args.tasks, noop)), ("roundtrip", lambda r: r.roundtrip(args.roundtrips, noop))]
    if adapter.is_async:
        chosen.append(("io", lambda r: r.throughput("sleep", args.io_tasks, sleep)))
    if "batch" in adapter.extra_phases:
        chosen.append(("batch", lambda r: r.throughput("noop", args.tasks, noop, batch=True)))
    if "two_processes" in adapter.extra_phases:
        chosen.append(("two_processes", lambda r: r.throughput("noop", args.tasks, noop, processes=2)))
    return chosen


def package_of(adapter: Adapter) -> str:
    first = adapter.requirements[0]
    return "qtasks" if first == "<repo>" else first.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip()


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.render_only:
        for note in render(json.loads(args.json.read_text())):
            print(note)
        return 0
    overrides = dict(item.split("=", 1) for item in args.python_for)
    adapters = discover(args.only)
    server = redis.Redis.from_url(args.redis)
    try:
        redis_version = server.info("server")["redis_version"]
    except redis.RedisError as error:
        print(f"Redis at {args.redis} is not reachable ({error}): start one or pass --redis URL", file=sys.stderr)
        return 1
    command = "python bench/peers/run.py" + ("" if not argv else " " + shlex.join(argv))
    print(f"{command}\n{machine()}; Redis {redis_version}", flush=True)
    frameworks: dict[str, dict[str, Any]] = {}
    runners: dict[str, Runner] = {}
    for adapter in adapters:
        entry = frameworks[adapter.name] = {"settings": adapter.settings, "concurrency": adapter.concurrency,
                                            "requirements": adapter.requirements, "package": package_of(adapter), "runs": [], "errors": []}
        try:
            python = ensure_python(adapter, overrides.get(adapter.name))
        except (VenvError, OSError) as error:
            entry["error"] = str(error)
            print(f"[{adapter.name}] skipped: {error}", flush=True)
            continue
        entry["python"] = str(python)
        entry["versions"] = installed_versions(python, adapter.requirements)
        runners[adapter.name] = Runner(adapter_command(python, adapter.path), args.redis, args.phase_timeout)
    for run in range(1, args.runs + 1):
        for adapter in adapters:  # frameworks take turns within a run, so drift spreads over all of them
            if adapter.name not in runners:
                continue
            entry, figures = frameworks[adapter.name], {}
            for phase, measure in phases(adapter, args):
                started = time.monotonic()
                try:
                    figures[phase] = measure(runners[adapter.name])
                except (PhaseError, OSError, ValueError, KeyError, redis.RedisError) as error:
                    entry["errors"].append({"run": run, "phase": phase, "error": str(error)})
                    print(f"[{adapter.name}] run {run} {phase}: FAILED: {error}", flush=True)
                    continue
                shown = ", ".join(f"{k}={v:,.2f}" for k, v in figures[phase].items())
                print(f"[{adapter.name}] run {run} {phase} ({time.monotonic() - started:.1f} s): {shown}", flush=True)
            entry["runs"].append(figures)
    server.flushdb()  # the last phase's keys: leave the bench database empty
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "redis_version": redis_version,
            "command": command, "runs": args.runs, "tasks": args.tasks, "roundtrips": args.roundtrips, "io_tasks": args.io_tasks}
    for entry in frameworks.values():
        entry["median"] = median_figures(entry["runs"])
        entry["measured"] = {key: meta[key] for key in ("date", "command", "runs", "tasks", "roundtrips", "io_tasks")}
    data = merge_json(args.json, {"meta": meta, "frameworks": frameworks})
    print(f"\nmedians ({args.json}):")
    for label, figures in summary_rows({"frameworks": frameworks}):
        print(f"  {label:32} " + "  ".join(f"{k}={v:,.2f}" for k, v in figures.items() if v is not None))
    if args.render:
        for note in render(data):
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
