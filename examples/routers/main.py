"""Routers: tasks in ``tasks.py``, the app in ``app.py``, and this producer, which only enqueues.

Run it with ``python examples/routers/main.py`` (the SQLite default, no server). It starts a
worker process (``python -m qtasks -A app:app run``, what you would run in another terminal),
enqueues through the router's task handles, prints the results, and stops the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from app import app
from tasks import add, average, count_down

HERE = Path(__file__).resolve().parent


def start_worker() -> subprocess.Popen[bytes]:
    """``python -m qtasks -A app:app run`` in this working directory (so it shares the SQLite file)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "app:app", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main() -> None:
    worker = start_worker()
    try:
        total = await add.add_task(2, 3, timeout=60)  # waits for the worker process
        print(f"add(2, 3) -> {total.status} {total.returning} (priority {total.priority}: the app's default)")
        mean = await average.add_task([1.0, 2.0, 6.0], timeout=60)
        print(f"average([1, 2, 6]) -> {mean.status} {mean.returning} (priority {mean.priority})")
        values = await count_down.add_task(3, timeout=60)
        print(f"countdown(3) -> {values.status} {values.returning}")
        print(f"this process ran a worker: {app.worker is not None}; imported statistics: {'statistics' in sys.modules}")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


if __name__ == "__main__":
    anyio.run(main)
