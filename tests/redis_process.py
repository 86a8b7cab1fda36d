"""A private redis-server for tests that restart or kill it: a free loopback port, stopped by its pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisProcess", "free_port", "SHARED_URL"]

SHARED_URL = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisProcess:
    """One redis-server in ``directory`` (append-only file, fsync on every write).

    Args:
        directory: Where the server keeps its files.
        unixsocket: Also listen on this unix socket path.
    """

    def __init__(self, directory: Path, unixsocket: str | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.unixsocket = unixsocket
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's ``redis://`` URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING (at most 10 s)."""
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
        ]
        if self.unixsocket:
            command += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.process.returncode}")
            time.sleep(0.02)  # waiting for an external process to listen
        raise RuntimeError("redis-server did not answer within 10 s")

    def kill(self) -> None:
        """SIGKILL the server (by its pid) and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the server if it runs."""
        self.kill()
        self.process = None
