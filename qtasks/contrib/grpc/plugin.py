"""AsyncgRPCPlugin / SyncgRPCPlugin: serve the gRPC API beside the app's worker, or in a process of its own."""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import grpc

from qtasks._state import kernel_of
from qtasks.contrib.grpc.server import QTasksServer
from qtasks.errors import ConfigurationError
from qtasks.hookspecs import hookimpl

__all__ = ["AsyncgRPCPlugin", "SyncgRPCPlugin"]


class _GrpcPlugin:
    """What both plugins share: the server, the worker service, and a stop that ends :meth:`_serve`.

    Args:
        app: The app whose tasks clients enqueue (sync or async).
        host: The address to listen on; ``0.0.0.0`` is every IPv4 interface.
        port: The port; 0 picks a free one (read :attr:`port` once serving).
        max_concurrent_rpcs: Refuse RPCs beyond this many at once; None: no limit.
        grpc_options: gRPC channel options; they replace the defaults of the same name.
        credentials: ``grpc.ssl_server_credentials(...)`` for TLS; None listens in plaintext.
    """

    name = "grpc"  # the name add_plugin registers it under
    serves_sync_app = False

    def __init__(
        self, app: Any, host: str = "0.0.0.0", port: int = 50051, *, max_concurrent_rpcs: int | None = None,
        grpc_options: Sequence[tuple[str, Any]] | None = None, credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.app = app
        self.kernel = kernel_of(app)
        if (self.kernel is not app) != self.serves_sync_app:
            kind, other = ("a sync app (qtasks.QueueTasks)", "AsyncgRPCPlugin") if self.serves_sync_app else ("an async app (qtasks.asyncio.QueueTasks)", "SyncgRPCPlugin")
            raise ConfigurationError(f"{type(self).__name__} serves {kind}; for {app!r} use {other}")
        self.server = QTasksServer(
            self.kernel, host, port, max_concurrent_rpcs=max_concurrent_rpcs, grpc_options=grpc_options, credentials=credentials,
        )
        self._stopping: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} app={self.kernel.name!r} address={self.server.address!r}>"

    @property
    def port(self) -> int:
        """The port: the one bound once serving (useful with ``port=0``)."""
        return self.server.port

    @property
    def address(self) -> str:
        """``host:port`` as clients dial it."""
        return self.server.address

    @hookimpl
    def qtasks_worker_services(self, worker: Any) -> Callable[[], Awaitable[None]] | None:
        """Serve gRPC beside the app's worker while it serves, unless :meth:`start` already did."""
        if worker.app is not self.kernel or self.server.running:
            return None
        return self._serve

    async def _serve(self) -> None:
        """Serve until :meth:`_stop`, a stop request or cancellation; then stop the server."""
        self._stopping = stopping = anyio.Event()
        try:
            await self.server.start()
            await stopping.wait()
        finally:
            self._stopping = None
            await self.server.stop()

    def _request_stop(self) -> None:
        """Make :meth:`_serve` return (call it on the app's event loop)."""
        if self._stopping is not None:
            self._stopping.set()

    async def _stop(self, grace: float | None) -> None:
        self._request_stop()
        await self.server.stop(grace)

    async def _stop_on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self._request_stop()


class AsyncgRPCPlugin(_GrpcPlugin):
    """The gRPC API (``qtasks.v1.QTasksService``: AddTask, GetTask) of an async app.

    Register it with ``app.add_plugin(plugin)``: every worker of the app (``app.serve()``,
    ``qtasks run``) then serves gRPC beside its tasks. Or run the server without a worker:
    ``await plugin.start()`` / ``await plugin.stop()``, ``await plugin.serve()``, or
    ``plugin.run_forever()`` in a process of its own (enqueueing needs no worker).
    """

    async def start(self) -> None:
        """Listen and serve in the background of the running event loop; does nothing when serving."""
        await self.server.start()

    async def stop(self, grace: float | None = 3.0) -> None:
        """Stop serving; running RPCs get ``grace`` seconds. :meth:`serve` then returns."""
        await self._stop(grace)

    async def serve(self) -> None:
        """Serve until :meth:`stop`, :meth:`request_stop` or cancellation; the app's components stay open."""
        await self._serve()

    def request_stop(self) -> None:
        """Make :meth:`serve` return soon (call it on the event loop that runs it)."""
        self._request_stop()

    def run_forever(self) -> None:
        """Serve in this process until SIGINT/SIGTERM, then close the app's components."""
        anyio.run(self._serve_until_signal)

    async def _serve_until_signal(self) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._stop_on_signals)
            try:
                await self._serve()
            finally:
                group.cancel_scope.cancel()
        await self.kernel.close()


class SyncgRPCPlugin(_GrpcPlugin):
    """The gRPC API of a sync app (``qtasks.QueueTasks``). The server runs on the app's event loop
    thread, so every method blocks only until it is done, and any thread may call them.

    Register it with ``app.add_plugin(plugin)`` to serve beside the app's worker, or call
    :meth:`start` / :meth:`stop`, or :meth:`run_forever` in a process of its own.
    """

    serves_sync_app = True

    def start(self) -> None:
        """Listen and serve on the app's event loop thread; does nothing when serving."""
        self.kernel.loop_thread().call(self.server.start)

    def stop(self, grace: float | None = 3.0) -> None:
        """Stop serving; running RPCs get ``grace`` seconds. :meth:`run_forever` then returns."""
        self.kernel.loop_thread().call(self._stop, grace)

    def request_stop(self) -> None:
        """Make :meth:`run_forever` return soon; safe from any thread and from a signal handler."""
        self.kernel.loop_thread().call_soon(self._request_stop)

    def run_forever(self) -> None:
        """Serve until SIGINT/SIGTERM or :meth:`stop`, then close the app's components."""
        loop = self.kernel.loop_thread()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: self.request_stop())
        try:
            loop.call(self._serve)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            loop.call(self.kernel.close)
