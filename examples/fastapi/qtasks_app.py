"""The QTasks app; a worker serves it: ``python -m qtasks -A qtasks_app:app run`` (or ``python qtasks_app.py``)."""

import os

from qtasks.asyncio import QueueTasks
from tasks import router as tasks_router

app = QueueTasks(
    name=os.environ.get("QTASKS_APP_NAME", "fastapi-example"),
    broker_url=os.environ.get("QTASKS_BROKER_URL", "redis://127.0.0.1:6379/0"),
)
app.include_router(tasks_router)

if __name__ == "__main__":
    app.run_forever()
