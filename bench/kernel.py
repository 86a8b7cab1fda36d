"""Kernel benchmark: no-op task throughput on the memory broker, and the cost of one trigger.

Not a test: it prints figures. Run from the repository root::

    .venv/bin/python bench/kernel.py                      # everything, defaults
    .venv/bin/python bench/kernel.py --tasks 1000 --repeat 25 --only e2e   # short runs: the best
                                                          # ones catch a noisy machine's quiet windows
    .venv/bin/python bench/kernel.py --only breakdown     # per-step costs, noise-resistant
    .venv/bin/python bench/kernel.py --profile            # cProfile over one async no-op run

End to end: one process, an async app (``qtasks.asyncio.QueueTasks``) with every default plugin,
a worker started with ``tg.start_soon(app.serve, concurrency, False)``, N ``await noop.add_task()``
calls, timed from the first enqueue until the last task's final status is stored. Completion is
detected by a plugin whose ``qtasks_task_finished`` counts final records (it fires right after the
final ``storage.save``) and sets an ``anyio.Event`` at N: no polling sleeps.

Dispatch: ns per ``await app.dispatcher.<mode>(...)`` over ``--calls`` calls, against a bare
``await`` of an empty coroutine function.

Breakdown: ``add_task`` and ``process_delivery`` called directly (outside the worker's scheduling)
and the pieces around them, each the fastest slice of 200 calls. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

import anyio

from qtasks import hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.kernel.model import FINAL_STATUSES

FINAL = FINAL_STATUSES


# -- end to end ---------------------------------------------------------------------------------


class Completion:
    """Counts final records through ``qtasks_task_finished``; sets ``done`` at ``expected``."""

    name = "bench_completion"

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.finished = 0
        self.failed = 0
        self.started = anyio.Event()
        self.done = anyio.Event()
        self.done_at = 0.0
        self.done_cpu = 0.0

    @hookimpl
    def qtasks_startup(self, app: Any, component: str) -> None:
        if component == "worker":
            self.started.set()

    @hookimpl
    def qtasks_task_finished(self, worker: Any, task: Any) -> None:
        if task.status not in FINAL:
            return  # a retry record: the task is not over
        if task.status != "success":
            self.failed += 1
        self.finished += 1
        if self.finished == self.expected:
            self.done_at = time.perf_counter()
            self.done_cpu = time.process_time()
            self.done.set()


async def noop_async() -> None:
    return None


def noop_sync() -> None:
    return None


def plugin_names(app: Any) -> str:
    return ", ".join(f"{name} ({app.pm.origins.get(name, ('user',))[0]})" for name, _ in app.pm.list_name_plugin())


async def one_run(tasks: int, concurrency: int, kind: str) -> tuple[float, float, float]:
    """Run ``tasks`` no-op tasks once; return (end-to-end s, enqueue s, end-to-end CPU s)."""
    app = QueueTasks(name=f"bench-{kind}", broker_url="memory://")
    noop = app.task(name="noop")(noop_async if kind == "async" else noop_sync)
    completion = Completion(tasks)
    app.add_plugin(completion)
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.serve, concurrency, False)
        await completion.started.wait()  # components and worker are up: time tasks only
        cpu_start = time.process_time()
        start = time.perf_counter()
        for _ in range(tasks):
            await noop.add_task()
        enqueued = time.perf_counter()
        with anyio.fail_after(max(60.0, tasks / 100)):
            await completion.done.wait()
        cpu = completion.done_cpu - cpu_start
        await app.stop()
    if completion.failed:
        raise RuntimeError(f"{completion.failed} no-op task(s) did not succeed")
    return completion.done_at - start, enqueued - start, cpu


def e2e(tasks: int, concurrency: int, kind: str, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        gc.collect()
        runs.append(anyio.run(one_run, tasks, concurrency, kind))
    rates = sorted(tasks / total for total, _, _ in runs)
    enqueue = sorted(tasks / enq for _, enq, _ in runs)
    drain = sorted(tasks / (total - enq) for total, enq, _ in runs)
    cpu = sorted(tasks / c for _, _, c in runs)
    return {
        "drain_best": drain[-1],
        "drain_median": statistics.median(drain),
        "best": rates[-1],
        "median": statistics.median(rates),
        "enq_best": enqueue[-1],
        "enq_median": statistics.median(enqueue),
        "cpu_best": cpu[-1],
        "cpu_median": statistics.median(cpu),
    }


# -- dispatch -----------------------------------------------------------------------------------


class SyncAck:
    name = "bench_sync_ack"

    @hookimpl
    def qtasks_task_acknowledged(self, worker: Any, message: Any) -> None:
        return None


class AsyncAck:
    name = "bench_async_ack"

    @hookimpl
    async def qtasks_task_acknowledged(self, worker: Any, message: Any) -> None:
        return None


async def empty() -> None:
    pass


SLICES = 10


async def time_calls(make: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float, float]:
    """ns per ``await make()``, the loop's own overhead included: (wall over all ``calls``, CPU over
    all ``calls``, wall of the fastest of ``SLICES`` equal slices: the least disturbed figure)."""
    per_slice = max(calls // SLICES, 1)
    slices = []
    cpu = time.process_time_ns()
    for _ in range(SLICES):
        start = time.perf_counter_ns()
        for _ in range(per_slice):
            await make()
        slices.append(time.perf_counter_ns() - start)
    cpu = time.process_time_ns() - cpu
    done = per_slice * SLICES
    return sum(slices) / done, cpu / done, min(slices) / per_slice


async def dispatch_cases(calls: int) -> dict[str, tuple[float, float, float]]:
    app = QueueTasks(name="bench-dispatch", broker_url="memory://")
    d = app.dispatcher
    for hook in ("qtasks_task_acknowledged", "qtasks_task_result"):
        impls = getattr(app.pm.hook, hook).get_hookimpls()
        if impls or d.chain(hook):
            raise RuntimeError(f"{hook} has default implementations {impls}: the 'none' cases are wrong")
    notify = d.notify
    pipe = d.pipe
    out = {}
    out["bare await of an empty coroutine function"] = await time_calls(empty, calls)
    out["notify, 0 impls (qtasks_task_acknowledged)"] = await time_calls(
        lambda: notify("qtasks_task_acknowledged", worker=None, message=None), calls
    )
    out["pipe, 0 impls (qtasks_task_result)"] = await time_calls(
        lambda: pipe("qtasks_task_result", worker=None, call=None, result=None), calls
    )
    name = app.add_plugin(SyncAck())
    out["notify, 1 sync impl"] = await time_calls(
        lambda: notify("qtasks_task_acknowledged", worker=None, message=None), calls
    )
    app.remove_plugin(name)
    name = app.add_plugin(AsyncAck())
    out["notify, 1 async impl"] = await time_calls(
        lambda: notify("qtasks_task_acknowledged", worker=None, message=None), calls
    )
    app.add_plugin(SyncAck())
    out["notify, 1 sync + 1 async impl"] = await time_calls(
        lambda: notify("qtasks_task_acknowledged", worker=None, message=None), calls
    )
    return out


def dispatch(calls: int, repeat: int) -> dict[str, tuple[float, float, float, float]]:
    """Per case: wall ns best and median over the repeats, CPU ns median, fastest slice."""
    runs = [anyio.run(dispatch_cases, calls) for _ in range(repeat)]
    return {
        k: (
            min(r[k][0] for r in runs), statistics.median(r[k][0] for r in runs),
            statistics.median(r[k][1] for r in runs), min(r[k][2] for r in runs),
        )
        for k in runs[0]
    }


# -- breakdown ----------------------------------------------------------------------------------

SLICE = 200


async def best_per_call(step: Callable[[], Awaitable[Any]], calls: int) -> float:
    """µs per ``await step()``: the fastest slice of ``SLICE`` calls (noise only ever adds time)."""
    best = float("inf")
    for _ in range(max(calls // SLICE, 1)):
        start = time.perf_counter_ns()
        for _ in range(SLICE):
            await step()
        best = min(best, time.perf_counter_ns() - start)
    return best / SLICE / 1000


async def breakdown_cases(calls: int) -> dict[str, float]:
    """Per-task cost of the producer and the worker outside the scheduler, and of the pieces around them."""
    import attrs
    from qtasks.kernel import lifecycle
    from qtasks.kernel.model import TaskMessage, now
    from qtasks.kernel.worker import Worker

    out: dict[str, float] = {}
    for disabled in ((), ("logging",)):
        app = QueueTasks(name="bench-breakdown", broker_url="memory://", disable_plugins=list(disabled))
        noop = app.task(name="noop")(noop_async)
        await app.start()
        worker = Worker(app, 10)  # not serving: process_delivery is called directly
        for component in ("broker", "storage", "serializer", "steps"):  # what Worker.serve() caches, if it does
            if hasattr(worker, component):
                setattr(worker, component, getattr(app, component))
        suffix = ", 'logging' disabled" if disabled else ""
        out[f"add_task (producer, whole){suffix}"] = await best_per_call(noop.add_task, calls)
        deliveries = iter(await app.broker.claim("bench", calls, 0))
        out[f"process_delivery (worker, whole, no scheduling){suffix}"] = await best_per_call(
            lambda: lifecycle.process_delivery(worker, next(deliveries)), calls
        )
        await app.close()

    def sync(func: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            func()
        return step

    await app.start()  # the last app of the loop above, started again
    message = TaskMessage(uuid="00000000-0000-4000-8000-000000000000", task_name="noop")
    payload = app.serializer.dumps(message)
    record = await noop.add_task()
    broker = app.broker
    claims = max(calls // 10, SLICE)  # best_per_call makes at most this many claims of 10
    for _ in range(claims * 10):
        await noop.add_task()

    async def claim_ten() -> None:  # one batch of 10, as a worker with 10 idle consumers claims
        for delivery in await broker.claim("bench", 10, 0):
            await broker.ack(delivery)

    out["memory broker: claim a batch of 10 + ack each, per delivery"] = await best_per_call(claim_ten, claims) / 10
    out["anyio.lowlevel.checkpoint() (one event-loop pass)"] = await best_per_call(anyio.lowlevel.checkpoint, calls)
    out["serializer.dumps(message)"] = await best_per_call(sync(lambda: app.serializer.dumps(message)), calls)
    out["serializer.loads(payload)"] = await best_per_call(sync(lambda: app.serializer.loads(payload)), calls)
    out["attrs.evolve(task, status=, returning=, updated_at=now())"] = await best_per_call(
        sync(lambda: attrs.evolve(record, status="success", returning=None, updated_at=now())), calls
    )
    out["bare await of an empty coroutine function"] = await best_per_call(empty, calls)
    return out


# -- report -------------------------------------------------------------------------------------


def environment() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("pluggy", "anyio", "attrs", "cattrs"))
    return (
        f"machine: {os.cpu_count()} CPU(s), {cpu}; {platform.system()} {platform.release()}\n"
        f"python:  {platform.python_implementation()} {platform.python_version()}; {versions}\n"
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start"
    )


def profile(tasks: int, concurrency: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    total, enq, _cpu = anyio.run(one_run, tasks, concurrency, "async")
    profiler.disable()
    print(f"\nprofiled run (async, {tasks} tasks, concurrency {concurrency}): {tasks / total:,.0f} tasks/s "
          f"end to end, {tasks / enq:,.0f} enqueues/s (cProfile slows everything down)")
    stats = pstats.Stats(profiler)
    calls = sum(row[1] for row in stats.stats.values())
    passes = sum(row[1] for (_f, _l, name), row in stats.stats.items() if name == "_run_once")
    print(f"per task: {calls / tasks:,.0f} Python function calls, {passes / tasks:.2f} event-loop passes "
          "(asyncio _run_once); these counts do not depend on machine noise, the times do")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(key).print_stats(25)
        print(f"\n--- top 25 by {key} ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip() and "Ordered by" not in line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op tasks per run (default 20000)")
    parser.add_argument("--concurrency", type=int, default=10, help="worker concurrency (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best and median are shown (default 3)")
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls per dispatch figure (default 1e6)")
    parser.add_argument("--only", choices=("all", "e2e", "dispatch", "breakdown"), default="all")
    parser.add_argument("--profile", action="store_true", help="only cProfile one async no-op run")
    parser.add_argument("--entry-points", action="store_true",
                        help="also load third-party plugins of the 'qtasks' entry-point group (default: builtins only)")
    args = parser.parse_args(argv)
    if not args.entry_points:
        os.environ["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    command = [".venv/bin/python", "bench/kernel.py", "--tasks", str(args.tasks), "--concurrency", str(args.concurrency),
               "--repeat", str(args.repeat), "--calls", str(args.calls), "--only", args.only]
    command += ["--entry-points"] * args.entry_points + ["--profile"] * args.profile
    print(f"command: {shlex.join(command)}")
    print(environment())
    print(f"plugins: {plugin_names(QueueTasks(name='bench-listing'))} + bench_completion (the probe)")

    if args.profile:
        profile(args.tasks, args.concurrency)
        return 0

    if args.only in ("all", "e2e"):
        print(f"\nend to end, memory broker, {args.tasks:,} no-op tasks, producer and worker in one process, "
              f"best / median of {args.repeat}")
        print("  tasks/s: first enqueue to last final status stored; cpu: tasks per CPU-second of this process;")
        print("  enqueues/s: first to last add_task (the producer never yields on the memory broker, so the")
        print("  worker starts after the last enqueue); drain/s: last enqueue to last final status (worker only)")
        header = (f"{'task':<14}{'conc.':>6}{'tasks/s':>10}{'median':>9}{'cpu t/s':>10}{'median':>9}"
                  f"{'enqueues/s':>12}{'median':>9}{'drain/s':>10}{'median':>9}")
        print(header)
        variants = [("async", args.concurrency), ("sync", args.concurrency)]
        variants += [("async", c) for c in (1, 100) if c != args.concurrency]
        for kind, concurrency in variants:
            r = e2e(args.tasks, concurrency, kind, args.repeat)
            label = "async def" if kind == "async" else "def (thread)"
            print(f"{label:<14}{concurrency:>6}{r['best']:>10,.0f}{r['median']:>9,.0f}{r['cpu_best']:>10,.0f}"
                  f"{r['cpu_median']:>9,.0f}{r['enq_best']:>12,.0f}{r['enq_median']:>9,.0f}"
                  f"{r['drain_best']:>10,.0f}{r['drain_median']:>9,.0f}", flush=True)

    if args.only in ("all", "breakdown"):
        calls = min(args.tasks, 20_000)
        print(f"\nbreakdown, µs per call: fastest slice of {SLICE} calls over {calls:,} calls (least noise)")
        for label, micros in anyio.run(breakdown_cases, calls).items():
            print(f"  {label:<68}{micros:>8.2f}", flush=True)

    if args.only in ("all", "dispatch"):
        print(f"\ndispatch, ns per awaited call over {args.calls:,} calls (loop overhead included), best / median of {args.repeat}")
        print("  checked: qtasks_task_acknowledged and qtasks_task_result have no implementation by default")
        print(f"  wall: ns over all calls; cpu: CPU ns over all calls; slice: fastest {SLICES}th of the calls (least noise)")
        print(f"  {'case':<46}{'wall ns':>9}{'median':>8}{'cpu med':>9}{'slice':>8}")
        for label, (wall_best, wall_median, cpu_median, best_slice) in dispatch(args.calls, args.repeat).items():
            print(f"  {label:<46}{wall_best:>9,.0f}{wall_median:>8,.0f}{cpu_median:>9,.0f}{best_slice:>8,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
