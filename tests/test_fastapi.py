"""FastAPI with QTasks: the three-file example end to end (uvicorn, a worker process, Redis), and in process."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from qtasks import AsyncRouter, QueueTasks, SyncRouter, Task, hookimpl
from qtasks.asyncio import QueueTasks as AsyncQueueTasks
from qtasks.testing import running_worker

from background import background_process, copy_example, delete_app_keys, wait_until_listening
from redis_process import SHARED_URL, free_port
from subprocesses import child_env

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("worker_command", [["-m", "qtasks", "-A", "qtasks_app:app", "run"], ["qtasks_app.py"]], ids=["qtasks-run", "run_forever"])
def test_the_example_answers_the_sum_a_worker_computed(tmp_path: Path, worker_command: list[str]) -> None:
    """As docs/integrations.md shows: a worker, ``uvicorn api:app``, ``GET /``."""
    example = copy_example("fastapi", tmp_path)
    name = f"fastapi-example-{uuid4().hex[:8]}"
    env = child_env() | {"QTASKS_APP_NAME": name, "QTASKS_BROKER_URL": SHARED_URL}
    port = free_port()
    web_log = tmp_path / "web.log"
    try:
        with background_process([sys.executable, *worker_command], example, env, tmp_path / "worker.log") as worker, \
                background_process([sys.executable, "-m", "uvicorn", "api:app", "--port", str(port)], example, env, web_log) as web:
            wait_until_listening(port, web, web_log)
            response = httpx.get(f"http://127.0.0.1:{port}/", timeout=60)
    finally:
        delete_app_keys(name)
    assert (response.status_code, response.json()) == (200, {"result": 3}), (tmp_path / "worker.log").read_text()
    assert worker.returncode == 0
    # uvicorn shuts down cleanly (running the lifespan that closes the QTasks app), then re-raises SIGTERM
    assert web.returncode in (0, -signal.SIGTERM) and "Application shutdown complete." in web_log.read_text()


async def test_an_async_endpoint_awaits_a_router_task_of_an_async_app() -> None:
    router = AsyncRouter()

    @router.task()
    async def add(x: int, y: int) -> int:
        return x + y

    app = AsyncQueueTasks(name="fastapi-async", broker_url="memory://")
    app.include_router(router)
    api = FastAPI()

    @api.get("/add")
    async def endpoint(x: int, y: int) -> dict[str, int]:
        task = await add.add_task(x, y, timeout=10)
        return {"result": task.returning}

    async with running_worker(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api") as client:
        response = await client.get("/add", params={"x": 20, "y": 22})
    assert response.json() == {"result": 42}


class EnqueueThreads:
    """A plugin that records the thread each task was enqueued on."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    @hookimpl
    async def qtasks_task_enqueued(self, app: Any, task: Task) -> None:
        self.threads.append(threading.current_thread())


async def test_a_sync_endpoint_enqueues_through_the_sync_apps_loop_thread() -> None:
    """FastAPI runs a ``def`` endpoint in a worker thread of its own loop: the blocking call must
    still go to the sync app's loop thread, where its components live."""
    router = SyncRouter()

    @router.task()
    def add(x: int, y: int) -> int:
        return x + y

    threads = EnqueueThreads()
    app = QueueTasks(name="fastapi-sync", broker_url="memory://", plugins=[threads])
    app.include_router(router)
    api = FastAPI()

    @api.get("/add")
    def endpoint(x: int, y: int) -> dict[str, Any]:
        task = add.add_task(x, y, timeout=5)
        return {"result": None if task is None else task.returning}

    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    loop_thread = app.loop_thread().thread  # the one the worker serves on
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api") as client:
            response = await client.get("/add", params={"x": 20, "y": 22})
    finally:
        app.stop()
        worker.join(10)
        app.close()
    assert threads.threads == [loop_thread]
    assert response.json() == {"result": 42}
