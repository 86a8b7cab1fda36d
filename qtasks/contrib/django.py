"""Django integration: import the installed apps' task modules; enqueue when a transaction commits."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

import attrs
from django.apps import AppConfig, apps
from django.conf import settings
from django.db import transaction

from qtasks import _state
from qtasks.errors import ConfigurationError
from qtasks.kernel.handles import AsyncTask, SyncTask
from qtasks.kernel.model import Task
from qtasks.kernel.portal import run_blocking
from qtasks.kernel.producer import check_call

__all__ = ["autodiscover_tasks", "enqueue_on_commit", "PendingTask", "installed_app_modules"]

log = logging.getLogger("qtasks.contrib.django")


def installed_app_modules() -> list[str]:
    """Return the module names of the installed Django apps, in ``INSTALLED_APPS`` order.

    Read from the app registry once it is ready (after ``django.setup()``), else from
    ``settings.INSTALLED_APPS``, where an entry may also name an ``AppConfig`` class.
    """
    if apps.ready:
        return [config.name for config in apps.get_app_configs()]
    return [AppConfig.create(entry).name for entry in settings.INSTALLED_APPS]


def autodiscover_tasks(app: Any, modules: Sequence[str] | None = None) -> list[str]:
    """Import ``<django app>.<module>`` for every installed app and every name in ``modules``
    that exists, so the tasks declared there (``@app.task``, routers) register themselves.

    A module that does not exist is skipped silently. An exception raised while a module that
    exists is imported is logged at ERROR, with the module's name, and the others are still
    imported. Tasks that use models need the app registry: call ``django.setup()`` first.

    Args:
        app: The QTasks app (sync or async) the tasks register with; only named in the log.
        modules: Submodule names to import from each app; default ``["tasks"]``. Dotted names
            (``"jobs.email"``) work.

    Returns:
        The names of the modules imported, e.g. ``["shop.tasks", "mailer.tasks"]``.
    """
    wanted = ["tasks"] if modules is None else _module_names(modules)
    imported = [name for package in installed_app_modules() for name in (f"{package}.{m}" for m in wanted) if _import(name)]
    log.debug("autodiscover_tasks(%r): imported %s", getattr(app, "name", app), ", ".join(imported) or "nothing")
    return imported


def _module_names(modules: Sequence[str]) -> list[str]:
    if isinstance(modules, str) or not all(isinstance(m, str) and m for m in modules):
        raise TypeError(f"autodiscover_tasks: modules must be a list of module names, e.g. ['tasks'], got {modules!r}")
    return list(modules)


def _import(name: str) -> bool:
    """Import module ``name`` if it exists; log (and return False) when importing it fails."""
    try:
        if importlib.util.find_spec(name) is None:
            return False
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(f"{error.name}.")):
            return False  # the module, or a package on its dotted path, does not exist
        _log_failure(name, error)
        return False
    except Exception as error:  # any failure inside an existing module is reported, not raised
        _log_failure(name, error)
        return False
    return True


def _log_failure(name: str, error: Exception) -> None:
    log.error("autodiscover_tasks: cannot import %r: %s: %s", name, type(error).__name__, error, exc_info=error)


@attrs.define
class PendingTask:
    """What ``enqueue_on_commit`` returns: filled in when the transaction commits.

    Attributes:
        task_name: The task to enqueue.
        enqueued: True once the task was enqueued; stays False if the transaction rolls back.
        task: The stored record (status ``new``; with ``timeout=``, the final record or None when
            the time ran out); None until the transaction commits.
    """

    task_name: str
    enqueued: bool = False
    task: Task | None = None


def enqueue_on_commit(task: Any, *args: Any, using: str | None = None, app: Any = None, **kwargs: Any) -> PendingTask:
    """Enqueue ``task(*args, **kwargs)`` when the current transaction on database ``using`` commits.

    Django's ``transaction.on_commit`` decides when: outside ``transaction.atomic()`` (autocommit)
    the task is enqueued at once; inside, after the outermost block commits; never if it rolls
    back. The enqueue blocks the committing thread until the broker has the task, for a sync app
    and for an async app alike (``run_blocking`` finds the app's loop), so call it from sync code. An
    error while enqueuing (the broker is down) is raised by the commit, after the data is saved.

    Args:
        task: A task handle (what ``@app.task`` returns) or a registered task name.
        *args: The task's positional arguments.
        using: The Django database alias whose transaction decides; default ``"default"``.
        app: The QTasks app to enqueue through; default the handle's app (for a name: the last
            app created).
        **kwargs: The task's keyword arguments and ``add_task`` options (``priority``,
            ``countdown``, ``eta``, ``unique_key``, ``timeout``).

    Returns:
        A ``PendingTask`` whose ``task`` holds the record once the transaction has committed.
    """
    kernel, task_name, priority = _target(task, app)
    if priority is not None:
        kwargs.setdefault("priority", priority)
    check_call(task_name, kwargs.get("priority"), kwargs.get("timeout"))
    pending = PendingTask(task_name)

    def send() -> None:
        pending.task = run_blocking(kernel, kernel.add_task, task_name, *args, **kwargs)
        pending.enqueued = True

    transaction.on_commit(send, using=using)
    return pending


def _target(task: Any, app: Any) -> tuple[Any, str, int | None]:
    """Return the async kernel to enqueue through, the task's name and its priority (None: the
    app's definition decides)."""
    if isinstance(task, str):
        task_name, owner, priority = task, app, None
    elif not isinstance(task, (AsyncTask, SyncTask)):
        raise TypeError(f"enqueue_on_commit expects a task (what @app.task returns) or a task name, got {task!r}")
    elif app is not None:
        task_name, owner, priority = task.task_name, app, None
    else:  # a router's task in no app yet raises here, saying to include the router
        task_name, priority, owner = task.task_name, task.definition.priority, task.ctx.app
    kernel = _state.kernel_of(owner)
    if kernel is None:
        raise ConfigurationError(f"enqueue_on_commit({task_name!r}): no QTasks app: create a QueueTasks first or pass app=...")
    return kernel, task_name, priority
