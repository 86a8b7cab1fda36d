"""Peer benchmark: run one adapter's worker and producer as subprocesses and time them on a shared Redis counter."""

from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import redis

__all__ = ["COUNTER", "PhaseError", "Runner", "adapter_command", "percentile"]

COUNTER = "peers:done"
READY_TIMEOUT = 60.0
WARMUP_TIMEOUT = 60.0
STOP_GRACE = 10.0
POLL_SECONDS = 0.001


class PhaseError(RuntimeError):
    """A phase failed (a process exited, a time limit passed); the message says which and why."""


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _group_memory(pgid: int) -> tuple[int, int]:
    """(max VmHWM, sum VmRSS) in kB over the processes of process group ``pgid``."""
    peak = total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            if int(fields[2]) != pgid:  # fields after "(comm)": state, ppid, pgrp
                continue
            with open(f"/proc/{entry.name}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
                    elif line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return peak, total


@attrs.define
class Worker:
    """A worker subprocess (its own session, so its whole process group can be signalled)."""

    process: subprocess.Popen[str]
    stderr: Any
    lines: queue.Queue[str] = attrs.field(factory=queue.Queue)
    peak_kb: int = 0
    total_kb: int = 0

    def read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def sample(self) -> None:
        peak, total = _group_memory(self.process.pid)
        self.peak_kb, self.total_kb = max(self.peak_kb, peak), max(self.total_kb, total)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PhaseError(f"worker exited with code {self.process.returncode} before it was ready: {self.error_tail()}")
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if '"ready"' in line:
                return
        raise PhaseError(f"worker printed no {{\"ready\": true}} within {READY_TIMEOUT:.0f} s: {self.error_tail()}")

    def error_tail(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-600:] or "(no stderr)"

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL what is left after STOP_GRACE seconds."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(STOP_GRACE)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # children may outlive the leader
        except ProcessLookupError:
            pass
        self.process.wait()
        self.stderr.close()


@attrs.define
class Runner:
    """Runs the phases of one adapter: ``command(*args)`` is the argv of one adapter command."""

    command: Callable[..., list[str]]
    redis_url: str
    phase_timeout: float = 120.0
    client: redis.Redis = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.redis_url)

    def count(self) -> int:
        return int(self.client.get(COUNTER) or 0)

    def start_workers(self, mode: str, concurrency: int, processes: int) -> list[Worker]:
        workers = []
        for _ in range(processes):
            argv = self.command("worker", "--redis", self.redis_url, "--counter", COUNTER, "--mode", mode, "--concurrency", str(concurrency))
            stderr = tempfile.TemporaryFile("w+")
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
            worker = Worker(process, stderr)
            threading.Thread(target=worker.read_stdout, daemon=True).start()
            workers.append(worker)
        return workers

    def run_tool(self, *args: str, timeout: float) -> dict[str, Any]:
        """Run one adapter command to the end; its last stdout line, as JSON."""
        try:
            done = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise PhaseError(f"`{args[0]}` took more than {timeout:.0f} s") from None
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])[-600:]
            raise PhaseError(f"`{args[0]}` exited with code {done.returncode}: {tail or '(no stderr)'}")
        return json.loads(lines[-1])

    def wait_count(self, target: int, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise PhaseError(f"{what}: the counter reached {self.count()} of {target} in {timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    def with_workers(self, mode: str, concurrency: int, processes: int, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """FLUSHDB, start the workers, warm up (one task counted), run ``body``, stop the workers; add peak RSS."""
        self.client.flushdb()
        workers = self.start_workers(mode, concurrency, processes)
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.05):
                for worker in workers:
                    worker.sample()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            for worker in workers:
                worker.wait_ready(deadline)
            self.run_tool("produce", "--redis", self.redis_url, "--n", str(processes), "--mode", mode, timeout=WARMUP_TIMEOUT)
            self.wait_count(processes, WARMUP_TIMEOUT, "warm-up")
            self.client.delete(COUNTER)
            figures = body()
            for worker in workers:
                if worker.process.poll() is not None:
                    raise PhaseError(f"worker exited with code {worker.process.returncode} during the phase: {worker.error_tail()}")
        finally:
            stop_sampling.set()
            sampler.join()
            for worker in workers:
                worker.sample()
                worker.stop()
        return {**figures, "worker_peak_rss_mb": max(w.peak_kb for w in workers) / 1024,
                "workers_total_rss_mb": sum(w.total_kb for w in workers) / 1024}

    def throughput(self, mode: str, n: int, concurrency: int, processes: int = 1, batch: bool = False) -> dict[str, Any]:
        """End-to-end tasks/s (first to last completion) and producer enqueues/s for ``n`` tasks."""

        def body() -> dict[str, Any]:
            argv = self.command("produce", "--redis", self.redis_url, "--n", str(n), "--mode", mode, *(["--batch"] if batch else []))
            producer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                started = time.perf_counter()
                deadline = time.monotonic() + self.phase_timeout
                first = None
                while True:
                    done = self.count()
                    if first is None and done >= 1:
                        first = time.perf_counter()
                    if done >= n:
                        last = time.perf_counter()
                        break
                    if time.monotonic() > deadline:
                        rate = f" ({(done - 1) / (time.perf_counter() - first):,.0f} tasks/s over them)" if first and done > 1 else ""
                        raise PhaseError(f"{n} {mode} tasks: {done} done after {self.phase_timeout:.0f} s{rate}; "
                                         "a longer --phase-timeout lets it finish")
                    if producer.poll() not in (None, 0):
                        raise PhaseError(f"producer exited with code {producer.returncode}: {producer.stderr.read()[-600:]}")
                    time.sleep(POLL_SECONDS)
                out, err = producer.communicate(timeout=self.phase_timeout)
            finally:
                if producer.poll() is None:
                    os.killpg(producer.pid, signal.SIGKILL)
                    producer.wait()
            if producer.returncode != 0 or not out.strip():
                raise PhaseError(f"producer exited with code {producer.returncode}: {err.strip()[-600:]}")
            enqueue = json.loads(out.strip().splitlines()[-1])["enqueue_seconds"]
            assert first is not None
            return {"tasks_per_s": (n - 1) / (last - first) if n > 1 and last > first else n / (last - started),
                    "enqueues_per_s": n / enqueue, "wall_seconds": last - started}

        return self.with_workers(mode, concurrency, processes, body)

    def roundtrip(self, n: int, concurrency: int) -> dict[str, Any]:
        """p50/p99 of ``n`` sequential enqueue-and-wait round trips (the adapter times each one)."""

        def body() -> dict[str, Any]:
            latencies = self.run_tool("roundtrip", "--redis", self.redis_url, "--n", str(n), timeout=self.phase_timeout)["latencies_ms"]
            if len(latencies) != n:
                raise PhaseError(f"roundtrip returned {len(latencies)} latencies for {n} tasks")
            return {"p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99)}

        return self.with_workers("noop", concurrency, 1, body)


def adapter_command(python: Path, adapter: Path) -> Callable[..., list[str]]:
    """argv builder for ``python -I adapter ...`` (-I: the adapter's folder is not on sys.path, so
    ``adapters/celery.py`` does not shadow ``celery``)."""
    return lambda *args: [str(python), "-I", str(adapter), *args]

