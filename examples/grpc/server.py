"""gRPC: a worker that also serves AddTask and GetTask, so that programs in any language enqueue tasks.

Run ``python examples/grpc/server.py [PORT]`` (default 50051; the SQLite default URL, no other
server needed), then ``python examples/grpc/client.py [PORT]`` in another terminal; stop the
server with Ctrl-C. ``qtasks -A examples.grpc.server:app run`` serves the same way on 50051:
every worker of an app that has the plugin serves gRPC beside its tasks.
"""

from __future__ import annotations

import sys

from qtasks.asyncio import QueueTasks
from qtasks.plugins import AsyncgRPCPlugin

app = QueueTasks(name="grpc-example")
PORT = int(sys.argv[1]) if __name__ == "__main__" and len(sys.argv) > 1 else 50051


@app.task
async def add(x: int, y: int) -> int:
    """An async task."""
    return x + y


@app.task
def slugify(title: str, separator: str = "-") -> str:
    """A sync task (it runs in a worker thread)."""
    return separator.join(title.lower().split())


# Loopback only: the API has no authentication of its own (pass credentials= for TLS).
app.add_plugin(AsyncgRPCPlugin(app, host="127.0.0.1", port=PORT))

if __name__ == "__main__":
    app.run_forever()  # the worker, and gRPC beside it, until Ctrl-C / SIGTERM
