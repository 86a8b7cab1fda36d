"""Running the examples and worker processes from tests: one environment, one way to stop them."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parents[1]

__all__ = ["ROOT", "ANSI", "child_env", "run_example", "background_process", "worker_process", "read_terminal"]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def child_env() -> dict[str, str]:
    """The environment of a child process: no QTASKS_* setting leaks in, no plugin autoload."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTASKS_")}
    env["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def run_example(name: str, cwd: Path) -> list[str]:
    """Run ``examples/<name>.py`` in ``cwd`` (so its SQLite file lands there); return its stdout lines."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py")], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@contextmanager
def background_process(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends (SIGTERM, then a kill after 30 s); its output goes to ``log``."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def worker_process(cwd: Path, source: str, concurrency: int = 2) -> Iterator[subprocess.Popen[bytes]]:
    """Write ``source`` as ``cwd/jobs.py`` and serve its ``app`` in a ``qtasks run`` process until
    the block ends; its output goes to ``cwd/worker.log``."""
    (cwd / "jobs.py").write_text(source)
    command = [sys.executable, "-m", "qtasks", "-A", "jobs:app", "run", "-c", str(concurrency)]
    with background_process(command, cwd, child_env(), cwd / "worker.log") as process:
        yield process


def read_terminal(controller: int, until: Callable[[str], bool] | None = None, timeout: float = 30.0, keep_ansi: bool = False) -> str:
    """Read a pseudo-terminal until it closes (or ``until(text)`` holds, ANSI codes removed, or
    ``timeout`` passes); return the text, with the ANSI codes removed unless ``keep_ansi``."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until is not None and until(ANSI.sub("", b"".join(chunks).decode(errors="replace"))):
            break
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    text = b"".join(chunks).decode(errors="replace")
    return text if keep_ansi else ANSI.sub("", text)
