"""Task middlewares: classes the executor runs before and after a task's function."""

from __future__ import annotations

from typing import Any

__all__ = ["BaseMiddleware", "TaskMiddleware"]


class BaseMiddleware:
    """The root of QTasks middlewares; ``name`` labels it in logs."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__


class TaskMiddleware(BaseMiddleware):
    """A middleware around one run: the executor builds ``M(task_executor)`` and calls it.

    ``task_executor`` is the run's state (``qtasks.builtin_plugins.executor.RunState``): its
    ``call``, ``definition``, ``worker`` and ``app``, the ``args`` and ``kwargs`` the function
    gets (a before-middleware may replace them) and, after the function, its ``result`` (an
    after-middleware may replace it). Override ``__call__`` (sync or ``async def``); its return
    value is ignored. A middleware that raises fails the task like the function would.

    Register one for a task with ``@app.task(middlewares_before=[M])`` /
    ``middlewares_after=[M]``, or for every task of an app with
    ``app.add_middleware(M, position="before" | "after")``.
    """

    def __init__(self, task_executor: Any) -> None:
        super().__init__()
        self.task_executor = task_executor

    def __call__(self) -> Any:
        """Do nothing; subclasses override this."""
        return None
