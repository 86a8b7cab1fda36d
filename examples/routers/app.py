"""The app: it includes the router of ``tasks.py``. Workers serve it, producers enqueue through it.

Serve it with ``qtasks -A app:app run`` from this directory (or with it on ``PYTHONPATH``).
"""

from __future__ import annotations

from qtasks import QueueConfig
from qtasks.asyncio import QueueTasks
from tasks import router

app = QueueTasks(name="routers-example", config=QueueConfig(task_default_priority=5))  # SQLite in the working directory
app.include_router(router)
