"""The gRPC server of one app: QTasksService, the health service and reflection on a ``grpc.aio`` server."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from qtasks.contrib.grpc import qtasks_pb2, qtasks_pb2_grpc
from qtasks.contrib.grpc.service import QTasksServicer
from qtasks.errors import ConfigurationError
from qtasks.kernel.urls import redact_url

__all__ = ["QTasksServer", "SERVICE_NAME", "MAX_MESSAGE_BYTES", "DEFAULT_OPTIONS"]

log = logging.getLogger("qtasks.grpc")
SERVICE_NAME = qtasks_pb2.DESCRIPTOR.services_by_name["QTasksService"].full_name  # "qtasks.v1.QTasksService"
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)


def _options(grpc_options: Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    """The default channel options, each replaced by the caller's option of the same name."""
    merged = dict(DEFAULT_OPTIONS)
    for option in grpc_options or ():
        if not (isinstance(option, tuple) and len(option) == 2 and isinstance(option[0], str)):
            raise ConfigurationError(f"grpc_options: each option is a (name, value) pair, e.g. ('grpc.keepalive_time_ms', 30000); got {option!r}")
        merged[option[0]] = option[1]
    return list(merged.items())


class QTasksServer:
    """A ``grpc.aio`` server serving ``qtasks.v1.QTasksService`` for one app, with the
    ``grpc.health.v1.Health`` service and server reflection. Start and stop it on the event
    loop that runs the app.

    Args:
        app: The async app (a sync app's kernel).
        host: The address to listen on; ``0.0.0.0`` is every IPv4 interface.
        port: The port; 0 picks a free one (read :attr:`port` after :meth:`start`).
        max_concurrent_rpcs: Refuse RPCs beyond this many at once (RESOURCE_EXHAUSTED); None: no limit.
        grpc_options: Channel options, e.g. ``[("grpc.so_reuseport", 0)]``; they replace the
            defaults of the same name (messages up to 40 MiB each way).
        credentials: ``grpc.ssl_server_credentials(...)`` for TLS; None listens in plaintext.
    """

    def __init__(
        self, app: Any, host: str = "0.0.0.0", port: int = 50051, *, max_concurrent_rpcs: int | None = None,
        grpc_options: Sequence[tuple[str, Any]] | None = None, credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigurationError(f"gRPC port must be a whole number from 0 to 65535 (0 picks a free port), got {port!r}")
        if max_concurrent_rpcs is not None and (not isinstance(max_concurrent_rpcs, int) or max_concurrent_rpcs < 1):
            raise ConfigurationError(f"max_concurrent_rpcs must be a whole number >= 1, or None for no limit; got {max_concurrent_rpcs!r}")
        self.app = app
        self.host = host
        self.port = port
        self.max_concurrent_rpcs = max_concurrent_rpcs
        self.options = _options(grpc_options)
        self.credentials = credentials
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    @property
    def address(self) -> str:
        """``host:port`` as clients dial it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Listen and serve; does nothing when already serving.

        Raises:
            ConfigurationError: The address cannot be bound (port taken, host not local).
        """
        if self._server is not None:
            return
        server = grpc.aio.server(options=self.options, maximum_concurrent_rpcs=self.max_concurrent_rpcs)
        qtasks_pb2_grpc.add_QTasksServiceServicer_to_server(QTasksServicer(self.app), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        try:
            if self.credentials is None:
                self.port = server.add_insecure_port(self.address)
            else:
                self.port = server.add_secure_port(self.address, self.credentials)
        except RuntimeError as error:
            raise ConfigurationError(
                f"gRPC server of app {self.app.name!r} cannot listen on {self.address} ({error}): the port is taken or "
                "the host is not an address of this machine; choose another host= or port= (port=0 picks a free one)"
            ) from None
        self._server, self._health = server, health_servicer  # before the first await: one start at a time
        await server.start()
        for service in ("", SERVICE_NAME):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC: app %r serves %s on %s (broker %s)", self.app.name, SERVICE_NAME, self.address, redact_url(self.app.url))

    async def stop(self, grace: float | None = 3.0) -> None:
        """Report NOT_SERVING, refuse new RPCs and give running ones ``grace`` seconds; does
        nothing when not serving. Runs to the end even when the caller is cancelled."""
        server, health_servicer = self._server, self._health
        if server is None or health_servicer is None:
            return
        self._server = self._health = None
        with anyio.CancelScope(shield=True):
            await health_servicer.enter_graceful_shutdown()
            await server.stop(grace)
        log.info("gRPC: app %r stopped serving on %s", self.app.name, self.address)
