"""The tasks, on a router: no app here; ``qtasks_app.py`` includes the router."""

from qtasks import AsyncRouter

router = AsyncRouter()


@router.task()
async def example_task(x: int, y: int) -> int:
    """Add two numbers (on a worker)."""
    return x + y
