"""The async application: plugin loading, components, task registration and the producer path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio
import attrs

from qtasks import _state
from qtasks.errors import ConfigurationError, UnknownOptionError
from qtasks.hookspecs import COMPONENTS
from qtasks.kernel.components import Components
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.drain import describe_left, poll_until_empty, queue_left
from qtasks.kernel.global_config import GlobalConfigFacade
from qtasks.kernel.handles import AsyncTask
from qtasks.kernel.legacy import plugin_for
from qtasks.kernel.model import Task, TaskDefinition, as_uuid, now
from qtasks.kernel.pluginmanager import QtasksPluginManager, env_flag, env_list
from qtasks.kernel.portal import LoopThread
from qtasks.kernel.producer import check_call, check_unique, enqueue, enqueue_many, not_before
from qtasks.kernel.registry import TaskRegistry, task_decorator
from qtasks.kernel.steps import Steps
from qtasks.kernel.urls import resolve_url
from qtasks.logs import Logger
from qtasks.shared import adopt_shared_tasks

__all__ = ["AsyncQueueTasks", "task_decorator"]  # task_decorator: re-exported for the sync facade

log = logging.getLogger("qtasks")


class AsyncQueueTasks:
    """The QTasks application, async API (``qtasks.asyncio.QueueTasks``).

    Args:
        name: The app's name; it prefixes keys in shared brokers.
        broker_url: Where tasks go: ``sqlite:///path``, ``redis://...``, ``memory://``; default
            ``QTASKS_BROKER_URL`` or ``sqlite:///qtasks.sqlite3`` (in the working directory).
        broker: A ready broker object, used instead of ``qtasks_make_broker``.
        worker: Accepted for compatibility; the kernel's worker is used.
        log: A ``qtasks.logs.Logger``.
        config: A ``QueueConfig``; one object shared by every component.
        events: Accepted for compatibility.
        storage: A ready storage object, used instead of ``qtasks_make_storage``.
        global_config: A ready global config object.
        plugins: Plugin objects to register at construction.
        disable_plugins: Names of builtin or entry-point plugins not to load (also
            ``QTASKS_DISABLE_PLUGINS=a,b``).
    """

    def __init__(
        self,
        name: str = "QueueTasks",
        broker_url: str | None = None,
        broker: Any = None,
        worker: Any = None,
        log: Logger | None = None,
        config: QueueConfig | None = None,
        events: Any = None,
        *,
        storage: Any = None,
        global_config: Any = None,
        plugins: list[Any] | tuple[Any, ...] = (),
        disable_plugins: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.config = config or QueueConfig()
        self.url = resolve_url(broker_url)
        # Handlers and levels are the ``logging`` plugin's: without it, records go to the root logger.
        self.log = log or Logger(name, "QueueTasks", self.config.logs_default_level_server, self.config.logs_format, configure=False)
        self.events = events
        self._worker_override = worker
        self.components = Components(self, {"broker": broker, "storage": storage, "global_config": global_config})
        self._loop_thread: LoopThread | None = None
        self._loop_thread_lock = threading.Lock()
        self.worker: Any = None
        self.middlewares: dict[str, list[Any]] = {"before": [], "after": []}
        self.pm = QtasksPluginManager(on_error=self._internal_error)
        self.dispatcher = self.pm.dispatcher
        self.blocked = list(disable_plugins) + env_list("QTASKS_DISABLE_PLUGINS")
        self.pm.load_builtins(self.blocked)
        if not env_flag("QTASKS_DISABLE_PLUGIN_AUTOLOAD"):
            self.pm.load_entry_points(self.blocked)
        for plugin in plugins:
            self.add_plugin(plugin, origin="plugins=")
        self.registry = TaskRegistry()
        self.routers: list[Any] = []
        self._collect_options()
        self.pm.hook.qtasks_configure(app=self)
        adopt_shared_tasks(self)
        _state.app_main = self
        _state.log_main = self.log

    # -- plugins -------------------------------------------------------------------------------

    def _collect_options(self) -> None:
        for impl in self.pm.hook.qtasks_register_task_options.get_hookimpls():
            impl.function(self.registry.registrar(impl.plugin_name))
        for name, module in self.pm.blocked_builtins.items():
            declare = getattr(module, "qtasks_register_task_options", None)
            if declare is not None:
                declare(self.registry.registrar(name, blocked=True))

    def add_plugin(self, plugin: Any, trigger_names: list[str] | None = None, component: str | None = None, *, name: str | None = None, origin: str = "add_plugin") -> str:
        """Register a plugin: an object with ``@hookimpl`` methods, or an original-style object with
        ``trigger(name, **kwargs)``.

        Args:
            plugin: The plugin object.
            trigger_names: Hooks (or original trigger names) to take from it; None means all.
            component: ``worker``, ``broker``, ``storage`` or ``global_config``: only hooks that
                component fires.
            name: The registered name; default ``plugin.name`` or the class name.
            origin: The origin shown by ``qtasks plugins list``.

        Returns:
            The registered name (``component:name`` when a component is given).
        """
        if component is not None and component not in COMPONENTS:
            raise ConfigurationError(f"unknown component {component!r}: use one of {', '.join(sorted(COMPONENTS - {'app'}))}")
        registered, kind = plugin_for(plugin, trigger_names, component, self.pm.specs)
        label = name or getattr(plugin, "name", None) or getattr(plugin, "__name__", None) or type(plugin).__name__
        if component:
            label = f"{component}:{label}"
        self.pm.register_as(registered, label, origin if kind == "hookimpl" else f"{origin} (legacy)", component)
        if self.registry_ready:
            declare = getattr(registered, "qtasks_register_task_options", None)
            if declare is not None:
                declare(self.registry.registrar(label))
        return label

    def add_middleware(self, middleware: type, position: str = "before") -> None:
        """Run ``middleware`` (a ``qtasks.middlewares.TaskMiddleware`` subclass) around every task
        of this app: ``position="before"`` the function (it may change the arguments) or
        ``"after"`` it (it may change the result). App middlewares run outside a task's own."""
        if position not in self.middlewares:
            raise ValueError(f"add_middleware: position must be 'before' or 'after', got {position!r}")
        if not (isinstance(middleware, type) and callable(getattr(middleware, "__call__", None))):
            raise TypeError(f"add_middleware expects a middleware class (a TaskMiddleware subclass), got {middleware!r}")
        self.middlewares[position].append(middleware)

    def validate_task(self, definition: TaskDefinition) -> None:
        """Fire ``qtasks_task_registered`` for a definition about to be stored; plugins may refuse it."""
        self.pm.hook.qtasks_task_registered(app=self, definition=definition)

    @property
    def registry_ready(self) -> bool:
        """True once the task registry exists (after construction)."""
        return "registry" in self.__dict__

    def remove_plugin(self, name: str) -> None:
        """Unregister the plugin registered under ``name``."""
        if self.pm.unregister(name=name) is None:
            raise ConfigurationError(f"no plugin named {name!r}; registered: {', '.join(n for n, _ in self.pm.list_name_plugin())}")

    def _internal_error(self, error: BaseException, where: str) -> None:
        log.error("%s raised %s: %s (the task goes on)", where, type(error).__name__, error, exc_info=error)
        for impl in reversed(self.pm.hook.qtasks_internal_error.get_hookimpls()):
            try:
                impl.function(*[{"app": self, "error": error, "where": where}[a] for a in impl.argnames])
            except Exception:  # a failing error reporter must not recurse, nor stop the others
                log.exception("qtasks_internal_error in plugin %r raised", impl.plugin_name)

    # -- tasks ---------------------------------------------------------------------------------

    @property
    def tasks(self) -> dict[str, TaskDefinition]:
        """The registered task definitions by name."""
        return self.registry.tasks

    def task(self, name: Any = None, **options: Any) -> Any:
        """Register a task: ``@app.task`` or ``@app.task(name=..., priority=..., ...)``.

        Returns:
            An ``AsyncTask`` handle.
        """
        return task_decorator(self, lambda d: AsyncTask(d, self), name, options)

    def include_router(self, router: Any) -> None:
        """Register the tasks of an ``AsyncRouter`` / ``SyncRouter`` in this app (all or none);
        their options are checked here, and a task without ``priority`` gets
        ``config.task_default_priority``. See ``docs/routers.md``."""
        router.include_into(self)

    def include_routers(self, *routers: Any) -> None:
        """``include_router`` for each router, in order."""
        for router in routers:
            self.include_router(router)

    # -- components ----------------------------------------------------------------------------

    @property
    def broker(self) -> Any:
        """The broker component (made on first use)."""
        return self.components.get("broker")

    @property
    def storage(self) -> Any:
        """The storage component (made on first use)."""
        return self.components.get("storage")

    @property
    def serializer(self) -> Any:
        """The serializer component (made on first use)."""
        return self.components.get("serializer")

    @property
    def global_config(self) -> GlobalConfigFacade:
        """The shared key/value config: ``set(name, key, value)``, ``get(key, name)``, ..."""
        return GlobalConfigFacade(self)

    async def start(self) -> None:
        """Make and start the components (done by the first call that needs them)."""
        await self.components.start()

    async def close(self) -> None:
        """Stop the components (the worker must be stopped already)."""
        await self.components.close()

    # -- producer ------------------------------------------------------------------------------

    @property
    def steps(self) -> Steps:
        """The record-and-queue steps over the started broker and storage."""
        steps = self.components.steps
        if steps is None:
            raise RuntimeError("the app is not started: await app.start() first")
        return steps

    async def add_task(
        self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None, countdown: float | None = None,
        eta: datetime | None = None, unique_key: str | None = None, **kwargs: Any,
    ) -> Task | None:
        """Enqueue ``task_name(*args, **kwargs)``.

        Args:
            task_name: A registered task's name.
            priority: Lower runs first; default the task's own priority.
            timeout: Wait this many seconds for the task to end.
            countdown: Run no sooner than this many seconds from now.
            eta: Run no sooner than this aware datetime.
            unique_key: While a task enqueued with this key is queued or running, return that
                task instead of enqueuing another (the ``unique`` plugin).

        Returns:
            The stored ``new`` record (or the existing task's record, for ``unique_key``); with
            ``timeout``, the final record, or None when the time runs out.
        """
        check_call(task_name, priority, timeout)
        due = not_before(task_name, countdown, eta)
        if unique_key is not None:
            check_unique(self, task_name, unique_key)
        if not self.components.started:
            await self.start()
        task = await enqueue(self, task_name, args, kwargs, priority, due, unique_key)
        if timeout is None:
            return task
        return await self.wait_result(task.uuid, timeout)

    async def add_tasks(self, task_name: str, calls: Iterable[Any], *, priority: int | None = None, countdown: float | None = None, eta: datetime | None = None) -> list[Task]:
        """Enqueue many calls of one task in one step (all or none).

        Args:
            task_name: A registered task's name.
            calls: One item per task: a tuple of positional arguments, a dict of keyword
                arguments, or ``qtasks.Call(*args, **kwargs)``.
            priority: As for ``add_task``, for every task.
            countdown: As for ``add_task``.
            eta: As for ``add_task``.

        Returns:
            The stored ``new`` records, in the order of ``calls``.
        """
        check_call(task_name, priority, None)
        due = not_before(task_name, countdown, eta)
        if not self.components.started:
            await self.start()
        return await enqueue_many(self, task_name, calls, priority, due)

    async def cancel(self, uuid: UUID | str, reason: str = "") -> bool:
        """Cancel a task. A queued or delayed task never runs: its status becomes ``cancel`` now.
        A running one is asked to stop (``qtasks_task_cancel_running``; the ``cancel`` plugin):
        an async task is cancelled, a sync one sees ``self.ctx.cancelled``; it ends ``cancel``.

        Returns:
            True when the task was cancelled or asked to stop; False when it is unknown or
            already finished.
        """
        if not self.components.started:
            await self.start()
        task = await self.storage.get(as_uuid(uuid))
        if task is None or task.finished:
            return False
        cancelled = attrs.evolve(task, status="cancel", cancel_reason=reason or "cancelled before it ran", updated_at=now())
        if await self.steps.cancel(cancelled):
            return True
        if not self.dispatcher.chain("qtasks_task_cancel_running"):
            blocked = " (the builtin 'cancel' plugin is disabled: remove it from disable_plugins)" if "cancel" in self.pm.blocked_builtins else ""
            raise UnknownOptionError(f"task {task.uuid} is running: cancelling it needs a plugin that implements qtasks_task_cancel_running{blocked}")
        return bool(await self.dispatcher.first("qtasks_task_cancel_running", app=self, task=task, reason=reason or "cancelled while running"))

    async def get(self, uuid: UUID | str) -> Task | None:
        """Return the stored record of a task, or None if there is none."""
        if not self.components.started:
            await self.start()
        task = await self.storage.get(as_uuid(uuid))
        return None if task is None else await self._seen(task)

    async def wait_result(self, uuid: UUID | str, timeout: float = 100.0) -> Task | None:
        """Wait until a task's status is final; return the record, or None after ``timeout`` seconds."""
        if not self.components.started:
            await self.start()
        task = await self.storage.wait(as_uuid(uuid), timeout)
        return None if task is None else await self._seen(task)

    async def join(self, timeout: float | None = None) -> None:
        """Wait until this app's queue is drained: nothing ready, delayed or leased (running).

        A task that enqueues another before it ends keeps the queue busy, so a chain is waited
        for as a whole. It looks at the broker's counts, more slowly as time goes by.

        Raises:
            TimeoutError: after ``timeout`` seconds (None: no limit), naming what is left.
        """
        if not self.components.started:
            await self.start()
        left = await poll_until_empty(lambda: queue_left(self), timeout)
        if left:
            serving = "" if self.worker is not None else " (no worker of this app runs in this process)"
            raise TimeoutError(f"app {self.name!r}: the queue is not drained after {timeout}s: {describe_left(left)} left{serving}")

    async def _seen(self, task: Task) -> Task:
        if task.app is not self:
            task = attrs.evolve(task, app=self)
        return await self.dispatcher.pipe("qtasks_task_get", app=self, task=task)

    async def ping(self, server: bool = True) -> bool:
        """Return whether the broker answers (and, with ``server``, a worker of this app is serving)."""
        await self.start()
        alive = self.worker is not None if server else True
        ping = getattr(self.broker, "ping", None)
        if ping is not None:
            alive = alive and await ping()
        await self.dispatcher.notify("qtasks_pinged", app=self, alive=alive)
        return alive

    async def flush_all(self) -> None:
        """Drop every queued task and every stored record of this app."""
        await self.start()
        for what in ("broker", "storage"):
            await self.components.get(what).purge()
            await self.dispatcher.notify("qtasks_flushed", app=self, component=what)

    # -- worker --------------------------------------------------------------------------------

    async def serve(self, concurrency: int | None = None, handle_signals: bool = True) -> None:
        """Run a worker until SIGINT/SIGTERM or ``stop()``, then stop the components."""
        from qtasks.kernel.worker import serve_app

        await serve_app(self, concurrency or self.config.max_tasks_process, handle_signals)

    def request_stop(self) -> None:
        """Ask the running worker to stop claiming and drain (safe from the loop's thread)."""
        if self.worker is not None:
            self.worker.request_stop()

    async def stop(self) -> None:
        """Stop the worker if one serves (it drains first), else stop the components."""
        if self.worker is not None:
            self.worker.request_stop()
            await self.worker.stopped.wait()
        else:
            await self.close()

    def run_forever(self, loop: Any = None, starter: Any = None, num_workers: int = 4, reset_config: bool = True, concurrency: int | None = None) -> None:
        """Run a worker in this thread until SIGINT/SIGTERM (the original arguments are accepted and unused)."""
        anyio.run(self.serve, concurrency)

    def loop_thread(self) -> LoopThread:
        """The event loop thread that serves blocking calls (started on first use, once: a worker
        thread and a producer starting together must share one loop)."""
        with self._loop_thread_lock:
            if self._loop_thread is None:
                self._loop_thread = LoopThread(self.name)
            return self._loop_thread

