"""Servers that tests start as processes (a worker, uvicorn, Django's runserver): start, wait, stop."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from redis_process import SHARED_URL
from subprocesses import ROOT, background_process

__all__ = ["background_process", "wait_until_listening", "copy_example", "delete_app_keys"]


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    """Return once something accepts connections on ``127.0.0.1:port``; fail with the server's
    log if ``process`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"the server exited with status {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)  # waiting for an external process to listen
    raise AssertionError(f"nothing listened on port {port} within {timeout} s:\n{log.read_text()}")


def copy_example(name: str, into: Path) -> Path:
    """Copy ``examples/<name>/`` into ``into`` (without caches or SQLite files); return the copy."""
    return Path(shutil.copytree(ROOT / "examples" / name, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*")))


def delete_app_keys(app_name: str) -> None:
    """Delete every key of app ``app_name`` from the shared Redis (database 15)."""
    client = redis.Redis.from_url(SHARED_URL)
    try:
        keys = list(client.scan_iter(match=f"qtasks:{{{app_name}}}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
