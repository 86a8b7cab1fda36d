"""gRPC for non-Python clients: AsyncgRPCPlugin / SyncgRPCPlugin serve ``qtasks.v1.QTasksService``.

``qtasks_pb2.py``, ``qtasks_pb2.pyi`` and ``qtasks_pb2_grpc.py`` are generated from
``qtasks.proto`` by grpcio-tools 1.85.1. After a change to the ``.proto``, regenerate them from
the repository root with::

    python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. qtasks/contrib/grpc/qtasks.proto
    sed -i '/^import warnings$/d' qtasks/contrib/grpc/qtasks_pb2_grpc.py

(the second line drops an import the generated code never uses, which pyflakes rejects), and
raise the ``grpc`` extra in pyproject.toml to the grpcio and protobuf versions the new code
checks for at import. Needs the extra: ``pip install 'qtasks[grpc]'``.
"""

from __future__ import annotations

_NEEDED = {"grpc", "grpc_health", "grpc_reflection", "google"}

try:
    from qtasks.contrib.grpc.plugin import AsyncgRPCPlugin, SyncgRPCPlugin
    from qtasks.contrib.grpc.server import MAX_MESSAGE_BYTES, SERVICE_NAME, QTasksServer
    from qtasks.contrib.grpc.service import QTasksServicer
except ModuleNotFoundError as error:
    if (error.name or "").split(".")[0] not in _NEEDED:
        raise
    raise ModuleNotFoundError(
        f"the QTasks gRPC plugin needs the grpc extra (no module named {error.name!r}): pip install 'qtasks[grpc]'", name=error.name,
    ) from error

__all__ = ["AsyncgRPCPlugin", "SyncgRPCPlugin", "QTasksServer", "QTasksServicer", "SERVICE_NAME", "MAX_MESSAGE_BYTES"]
