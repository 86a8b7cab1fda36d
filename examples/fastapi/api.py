"""The API: ``GET /`` runs ``example_task(1, 2)`` on a worker and answers ``{"result": 3}``.

Serve it with ``uvicorn api:app``; a worker must serve ``qtasks_app:app``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from qtasks_app import app as qtasks_app  # the app that example_task's router is included in
from tasks import example_task


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    """Close the QTasks app's broker connections when the server stops."""
    yield
    await qtasks_app.close()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def read_root() -> dict[str, int]:
    """Enqueue the task and wait (at most 50 s) for a worker to run it."""
    task = await example_task.add_task(1, 2, timeout=50)
    if task is None:
        raise HTTPException(status_code=504, detail="no worker ran example_task within 50 s")
    return {"result": task.returning}
