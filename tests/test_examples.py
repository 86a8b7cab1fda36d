"""The examples run as the README says, and print what they promise."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from subprocesses import ROOT, run_example


def test_quickstart_runs_with_no_server(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == ["queued: add new", "add(2, 3) -> success 5", "word_count -> 6", "progress -> [0, 10, 20]"]
    assert lines[4].startswith("unknown task -> error: unknown task 'no_such_task'")
    assert (tmp_path / "qtasks.sqlite3").exists()


def test_two_terminals_share_the_default_sqlite_file(tmp_path: Path) -> None:
    """As the README shows: a producer started first queues its task in the file, the worker
    started after it (another process) runs it, and the producer prints the result."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTASKS_")}
    producer = subprocess.Popen([sys.executable, "examples/two_terminals.py", "2", "3"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "examples.two_terminals:app", "run"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        out, err = producer.communicate(timeout=90)
        assert producer.returncode == 0, err
        assert out.startswith("2 + 3 = 5 (task ") and out.rstrip().endswith("success)")
    finally:
        for process in (producer, worker):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0, worker.stderr.read() if worker.stderr else ""


def test_the_retries_example_succeeds_on_its_third_attempt(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "retries.py")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "attempt 1", "attempt 2", "attempt 3",
        "status: success | returned: https://example.org: 200 OK | attempts: 3",
        "error of attempt 1: ConnectionError: https://example.org did not answer",
        "error of attempt 2: ConnectionError: https://example.org did not answer",
    ]


def test_the_time_limits_example_stops_the_slow_tasks(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "time_limits.py")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "crawl(2): success: 2",
        "crawl(10): error: TimeoutError: task 'crawl' ran past max_time=0.5s",
        "render(0.1): success: rendered",
        "render(1.0): error: TimeoutError: task 'render' ran past max_time=0.5s",
    ]


def test_the_context_example_reaches_its_record_and_makes_children(tmp_path: Path) -> None:
    assert run_example("context", tmp_path) == [
        "thumbnails: success: ['cat.png@64px', 'cat.png@128px', 'cat.png@256px']",
        "checked(41): success: 42",
        "checked(-1): cancel: nothing to do for -1",
    ]


def test_the_generators_example_streams_then_keeps_the_return_value(tmp_path: Path) -> None:
    assert run_example("generators", tmp_path) == [
        "streamed: pass", "streamed: fail", "streamed: pass",
        "result: ['pass', 'fail', 'pass']",
        "returned: 2 of 3 passed",
    ]


def test_the_cancel_example_cancels_queued_and_running_tasks(tmp_path: Path) -> None:
    lines = run_example("cancel", tmp_path)
    assert lines[:5] == [
        "cancel queued: True",
        "crawl(example.org) cleaned up",
        "crawl: cancel: changed my mind",
        "crawl: cancel: user pressed stop",
        lines[4],
    ]
    assert lines[4].startswith("export: cancel: stopped after ") and lines[4].endswith(" rows") and len(lines) == 5


def test_the_middlewares_example_wraps_and_recovers(tmp_path: Path) -> None:
    assert run_example("middlewares", tmp_path) == [
        "colour('  RED '): success: {'task': 'colour', 'value': '#ff0000'}",
        "colour('Green'): success: {'task': 'colour', 'value': '#00ff00'}",
        "colour('blue'): success: {'task': 'colour', 'value': 'unknown'}",
    ]
