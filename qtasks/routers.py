"""Routers: tasks declared in their own module, registered in an app by ``app.include_router``."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from qtasks import _state
from qtasks.declared import AsyncDeclaredTask, DeclaredTask, SyncDeclaredTask, TaskDeclaration, origin_of
from qtasks.errors import ConfigurationError

__all__ = ["AsyncRouter", "SyncRouter", "Router"]

INCLUDE_HINT = "is in no app yet: include the router: app.include_router(router)"


class Router:
    """Tasks declared without an app. ``@router.task`` (bare or called, with the options of
    ``@app.task``) returns a handle; ``app.include_router(router)`` registers the tasks in that app,
    which checks their options and gives its ``task_default_priority`` to tasks without one.

    A router may be included in several apps: each gets its own definitions. A handle enqueues
    through the app that included its router most recently (still alive), or through the app
    given to ``handle.for_app(app)``. Tasks declared after an include are registered in the apps
    that already include the router.

    Args:
        name: A name for error messages; default the module that creates the router.
    """

    handle_class: type[DeclaredTask] = DeclaredTask

    def __init__(self, name: str | None = None) -> None:
        self.name = name or sys._getframe(1).f_globals.get("__name__", "?")
        self.tasks: dict[str, TaskDeclaration] = {}
        self._apps: list[weakref.ref[Any]] = []  # in the order they included this router

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @property
    def apps(self) -> list[Any]:
        """The live apps that include this router, the most recent last."""
        return [app for app in (ref() for ref in self._apps) if app is not None]

    def task(self, name: Any = None, **options: Any) -> Any:
        """Declare a task: ``@router.task`` or ``@router.task(name=..., priority=..., ...)``.

        Returns:
            An ``AsyncTask`` handle (``AsyncRouter``) or a ``SyncTask`` handle (``SyncRouter``).
        """
        if callable(name):
            return self._declare(name, None, options)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"@router.task(name) expects a string name, got {type(name).__name__}")
        chosen = options.pop("name", None) or name
        return lambda func: self._declare(func, chosen, options)

    def _declare(self, func: Callable[..., Any], name: str | None, options: dict[str, Any]) -> DeclaredTask:
        if not callable(func):
            raise TypeError(f"@router.task expects a function, got {type(func).__name__}")
        declaration = TaskDeclaration(name or func.__name__, func, dict(options))
        if not isinstance(declaration.name, str) or not declaration.name:
            raise ConfigurationError(f"task name must be a non-empty string, got {declaration.name!r}")
        earlier = self.tasks.get(declaration.name)
        if earlier is not None:
            raise ConfigurationError(
                f"{self!r} already has a task named {declaration.name!r} ({earlier.origin}); "
                f"{declaration.origin} needs another name: @router.task(name='...')"
            )
        apps = self.apps
        for app in apps:
            self._check_free(app, [declaration])
        _define_all(apps, [declaration])
        self.tasks[declaration.name] = declaration
        return self.handle_class(declaration, self._latest_first, INCLUDE_HINT)

    def _latest_first(self) -> Iterator[Any]:
        return reversed(self.apps)

    def include_into(self, app: Any) -> None:
        """Register this router's tasks in ``app`` (what ``app.include_router`` does).

        All or none: a clash of names or a refused option leaves the app as it was. Including a
        router again only makes that app its handles' default.
        """
        kernel = _state.kernel_of(app)
        pending = [d for d in self.tasks.values() if d.defined_in(kernel) is None]
        self._check_free(kernel, pending)
        _define_all([kernel], pending)
        self._apps = [ref for ref in self._apps if ref() is not None and _state.kernel_of(ref()) is not kernel]
        self._apps.append(weakref.ref(app))
        if self not in kernel.routers:
            kernel.routers.append(self)

    def _check_free(self, app: Any, declarations: list[TaskDeclaration]) -> None:
        kernel = _state.kernel_of(app)
        for declaration in declarations:
            existing = kernel.registry.tasks.get(declaration.name)
            if existing is None:
                continue
            owner = _router_of(kernel, declaration.name)
            source = f"from {owner!r}" if owner is not None else "registered with @app.task or shared_task"
            raise ConfigurationError(
                f"app {kernel.name!r}: task {declaration.name!r} of {self!r} ({declaration.origin}) clashes with the task "
                f"{declaration.name!r} {source} ({origin_of(existing.func)}); rename one: @router.task(name='...')"
            )


def _router_of(kernel: Any, task_name: str) -> Router | None:
    """The router whose task ``task_name`` the app has, or None (an ``@app.task`` or shared task)."""
    for router in kernel.routers:
        declaration = router.tasks.get(task_name)
        if declaration is not None and declaration.defined_in(kernel) is not None:
            return router
    return None


def _define_all(apps: list[Any], declarations: list[TaskDeclaration]) -> None:
    """Define every declaration in every app, or none: on an error, undo what was defined."""
    done: list[tuple[Any, str]] = []
    try:
        for app in apps:
            for declaration in declarations:
                declaration.define(app)
                done.append((app, declaration.name))
    except BaseException:
        for app, name in done:
            _state.kernel_of(app).registry.remove(name)
        raise


class AsyncRouter(Router):
    """A router for async apps: ``@router.task`` returns an ``AsyncTask`` (``await h.add_task()``)."""

    handle_class = AsyncDeclaredTask


class SyncRouter(Router):
    """A router for sync apps: ``@router.task`` returns a ``SyncTask`` (``h.add_task()`` blocks)."""

    handle_class = SyncDeclaredTask
