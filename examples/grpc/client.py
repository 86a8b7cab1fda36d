"""gRPC: a client of examples/grpc/server.py, as a program in any language would be one.

Run ``python examples/grpc/client.py [PORT]`` while the server runs. It uses the Python code
generated from ``qtasks/contrib/grpc/qtasks.proto``; other languages generate theirs from that
file (or ask the server's reflection service). Values travel as JSON text.
"""

from __future__ import annotations

import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from qtasks.contrib.grpc import qtasks_pb2, qtasks_pb2_grpc


def main(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=60)  # the server may still be starting
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="qtasks.v1.QTasksService"))
        print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))
        stub = qtasks_pb2_grpc.QTasksServiceStub(channel)

        # With a timeout, AddTask waits for the result.
        added = stub.AddTask(qtasks_pb2.AddTaskRequest(name="add", args_json=json.dumps([2, 3]), timeout=30))
        print(f"add(2, 3) -> {added.status} {added.result_json}")
        slug = stub.AddTask(qtasks_pb2.AddTaskRequest(name="slugify", kwargs_json=json.dumps({"title": "Hello gRPC World"}), timeout=30))
        print(f"slugify -> {slug.status} {slug.result_json}")

        # Without one, it returns the uuid at once; GetTask reads the record later.
        queued = stub.AddTask(qtasks_pb2.AddTaskRequest(name="add", args_json="[40, 2]", priority=1))
        print("queued:", queued.status, "| uuid returned:", bool(queued.uuid))
        record = stub.GetTask(qtasks_pb2.GetTaskRequest(uuid=added.uuid, include_result=True))
        print(f"GetTask(add's uuid) -> {record.status} {record.result_json}")

        # Errors come back as ok=false and a message.
        for request in (qtasks_pb2.AddTaskRequest(name="resize"), qtasks_pb2.AddTaskRequest(name="add", args_json="{\"x\": 1}")):
            reply = stub.AddTask(request)
            print(f"AddTask({request.name}) -> ok={reply.ok}: {reply.error}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50051)
