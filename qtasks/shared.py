"""``@shared_task``: tasks declared anywhere and registered in every app of the process."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from qtasks import _state
from qtasks.declared import AsyncDeclaredTask, DeclaredTask, SyncDeclaredTask, TaskDeclaration, origin_of
from qtasks.errors import ConfigurationError

__all__ = ["shared_task", "shared_tasks", "remove_shared_task", "adopt_shared_tasks"]

# Global by design: every live app (created before or after a declaration) registers every
# declaration. The apps (async kernels; a sync app's kernel stands for it) are held weakly, so a
# dropped app is forgotten.
_declarations: dict[str, TaskDeclaration] = {}
_apps: weakref.WeakSet[Any] = weakref.WeakSet()

NO_APP_HINT = (
    "has no app to enqueue through: create a QueueTasks first (the last one created is "
    "qtasks._state.app_main), or bind one: task.for_app(app)"
)


def shared_task(
    name: Any = None, priority: int | None = None, echo: bool = False, max_time: float | None = None, retry: int | None = None,
    retry_on_exc: list[type[BaseException]] | None = None, decode: Callable[..., Any] | None = None, tags: list[str] | None = None,
    description: str | None = None, generate_handler: Callable[..., Any] | None = None, executor: Any = None,
    middlewares_before: list[Any] | None = None, middlewares_after: list[Any] | None = None, awaiting: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Declare a task that every app of the process registers: ``@shared_task`` or ``@shared_task(...)``.

    The options are those of ``@app.task``; each app checks them when it registers the task (an
    app that exists now: at once; a later one: when it is created) and gives its own
    ``task_default_priority`` to a task without ``priority``.

    Args:
        name: The task name (default the function's name), or the function for bare use.
        awaiting: True returns an ``AsyncTask`` handle, False a ``SyncTask``; default ``AsyncTask``
            for ``async def`` functions and async generators, ``SyncTask`` otherwise.
        **kwargs: Plugin options (``retry_delay=``, ...).

    Returns:
        A handle that enqueues through ``qtasks._state.app_main`` (the last app created), or
        through the app given to ``handle.for_app(app)``.
    """
    named = {
        "priority": priority, "max_time": max_time, "retry": retry, "retry_on_exc": retry_on_exc, "decode": decode,
        "tags": tags, "description": description, "generate_handler": generate_handler, "executor": executor,
        "middlewares_before": middlewares_before, "middlewares_after": middlewares_after,
    }
    options = {key: value for key, value in named.items() if value is not None}
    if echo:
        options["echo"] = echo
    options.update(kwargs)
    if callable(name):
        return _declare(name, None, options, awaiting)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"@shared_task(name) expects a string name, got {type(name).__name__}")
    return lambda func: _declare(func, name, options, awaiting)


def _declare(func: Callable[..., Any], name: str | None, options: dict[str, Any], awaiting: bool | None) -> DeclaredTask:
    if not callable(func):
        raise TypeError(f"@shared_task expects a function, got {type(func).__name__}")
    declaration = TaskDeclaration(name or func.__name__, func, options)
    if not isinstance(declaration.name, str) or not declaration.name:
        raise ConfigurationError(f"task name must be a non-empty string, got {declaration.name!r}")
    earlier = _declarations.get(declaration.name)
    if earlier is not None:
        raise ConfigurationError(
            f"a shared task named {declaration.name!r} is already declared ({earlier.origin}); "
            f"{declaration.origin} needs another name: @shared_task(name='...')"
        )
    done: list[Any] = []
    try:
        for app in list(_apps):
            _register(app, declaration)
            done.append(app)
    except BaseException:
        for app in done:
            app.registry.remove(declaration.name)
        raise
    _declarations[declaration.name] = declaration
    if awaiting is None:
        awaiting = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
    handle_class = AsyncDeclaredTask if awaiting else SyncDeclaredTask
    return handle_class(declaration, _main_app, NO_APP_HINT)


def _main_app() -> Iterator[Any]:
    if _state.app_main is not None:
        yield _state.app_main


def _register(app: Any, declaration: TaskDeclaration) -> None:
    existing = app.registry.tasks.get(declaration.name)
    if existing is not None:
        raise ConfigurationError(
            f"app {app.name!r} already has a task named {declaration.name!r} ({origin_of(existing.func)}), "
            f"so it cannot take the shared task {declaration.origin}; rename one"
        )
    try:
        declaration.define(app)
    except ConfigurationError as error:
        raise type(error)(f"{error} (shared task {declaration.origin}, which every app registers)") from None


def adopt_shared_tasks(app: Any) -> None:
    """Register every shared task declared so far in a new app, and follow later declarations.

    Called by the app's constructor (``app`` is the async kernel)."""
    for declaration in _declarations.values():
        _register(app, declaration)
    _apps.add(app)


def shared_tasks() -> dict[str, TaskDeclaration]:
    """The shared task declarations, by name (a copy)."""
    return dict(_declarations)


def remove_shared_task(name: str) -> None:
    """Forget a shared task: later apps do not register it, live apps drop it (meant for tests
    and reloads: a worker already serving keeps what it cached)."""
    declaration = _declarations.pop(name, None)
    if declaration is None:
        raise KeyError(f"no shared task named {name!r}; declared: {', '.join(sorted(_declarations)) or 'none'}")
    for app in list(_apps):
        if declaration.defined_in(app) is not None:
            app.registry.remove(name)
