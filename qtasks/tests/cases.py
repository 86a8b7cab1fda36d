"""The test cases at their original import path: ``BaseTestCase``, ``AsyncTestCase`` and ``SyncTestCase`` (docs/testing.md)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import anyio

from qtasks._state import kernel_of
from qtasks.errors import ConfigurationError
from qtasks.kernel.components import STARTED_IN_ORDER, Components
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.model import Task
from qtasks.kernel.portal import run_blocking
from qtasks.kernel.urls import scheme_of
from qtasks.schemas.test import TestConfig
from qtasks.testing.eager_mode import eager
from qtasks.testing.workers import running_worker

__all__ = ["BaseTestCase", "AsyncTestCase", "SyncTestCase"]

STAND_IN_URL = "memory://"  # where the stand-ins of the components a TestConfig leaves out come from


class BaseTestCase:
    """A test case over an app: :meth:`settings` chooses what runs for real (a :class:`TestConfig`).

    The components the config leaves out are replaced, until :meth:`_restore`, by in-memory
    stand-ins (made by the builtin ``memory_*`` plugins); the config's ``plugins=False`` sets
    the app's non-builtin plugins aside for as long.

    Attributes:
        app: The app under test.
        name: A name for the case (default: the app's).
        config: The app's ``QueueConfig``.
        test_config: The :class:`TestConfig` in use (``TestConfig()`` until :meth:`settings`).
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, app: Any, name: str | None = None) -> None:
        self.app = app
        self._kernel = kernel_of(app)
        self.name = name or self._kernel.name
        self.config: QueueConfig = self._kernel.config
        self.test_config = TestConfig()
        self._own_components: Components | None = None
        self._set_aside: list[tuple[str, Any, tuple[str, str | None]]] = []

    def update_config(self, config: QueueConfig) -> None:
        """Give the app ``config`` (components made from now on read it)."""
        self.config = config
        self._kernel.config = config

    def settings(self, test_config: TestConfig | None = None, awaiting: bool | None = None) -> None:
        """Apply ``test_config`` (default: the current one) to the app.

        Args:
            test_config: What runs for real.
            awaiting: Accepted for compatibility: the components are always the async ones.

        Raises:
            ConfigurationError: a component must be replaced but the app has started already.
        """
        if test_config is not None:
            self.test_config = test_config
        self._use_stand_ins()
        if not self.test_config.plugins:
            self._set_plugins_aside()

    def _route(self) -> str:
        """Where ``add_task`` goes: ``"broker"`` (queued) or ``"eager"`` (run at once)."""
        if self.test_config.broker:
            return "broker"
        if self.test_config.worker:
            return "eager"
        raise ConfigurationError(
            f"{type(self).__name__} {self.name!r}: {self.test_config} runs neither the worker nor the broker, so add_task has "
            "nowhere to go: call settings(TestConfig.full()), only_worker() or only_broker() first"
        )

    def _serves(self) -> bool:
        """Whether the case runs a worker: the config keeps both the worker and the broker."""
        return self.test_config.worker and self.test_config.broker

    def _use_stand_ins(self) -> None:
        kernel = self._kernel
        left_out = [what for what in STARTED_IN_ORDER if not getattr(self.test_config, what)]
        own = self._own_components or kernel.components
        if self._own_components is None and (not left_out or scheme_of(kernel.url) == "memory"):
            return  # nothing to replace: every component is kept, or in memory already
        if kernel.components.started:
            raise ConfigurationError(
                f"{type(self).__name__}.settings(): app {kernel.name!r} has started its components already, so they cannot be "
                "replaced: call settings() before the app is used, or build the app on memory://"
            )
        given = {what: self._stand_in(what) if what in left_out else own.get(what) for what in STARTED_IN_ORDER}
        self._own_components = own
        kernel.components = Components(kernel, given)

    def _stand_in(self, what: str) -> Any:
        kernel = self._kernel
        made = getattr(kernel.pm.hook, f"qtasks_make_{what}")(app=kernel, url=STAND_IN_URL)
        if made is None:
            raise ConfigurationError(f"{type(self).__name__}: no in-memory {what} to stand in: the builtin 'memory_{what}' plugin is disabled")
        return made

    def _set_plugins_aside(self) -> None:
        pm = self._kernel.pm
        for name, plugin in list(pm.list_name_plugin()):
            origin = pm.origins.get(name, ("user", None))
            if plugin is None or origin[0] == "builtin":
                continue
            pm.unregister(name=name)
            self._set_aside.append((name, plugin, origin))

    def _restore(self) -> None:
        """Give the app back its own components and the plugins set aside (after they stopped)."""
        if self._own_components is not None:
            self._kernel.components = self._own_components
            self._own_components = None
        pm = self._kernel.pm
        for name, plugin, (origin, component) in self._set_aside:
            pm.register_as(plugin, name, origin, component)
        self._set_aside.clear()



class AsyncTestCase(BaseTestCase):
    """A test case over an async app (``qtasks.asyncio.QueueTasks``).

    ``case.settings(TestConfig.full())``, then ``await case.start()`` (a worker serves the app
    on the running asyncio loop), ``await case.add_task(...)``, ``await case.stop()``. Also
    ``async with case:``. See docs/testing.md for what each :class:`TestConfig` runs.

    Args:
        app: The async app under test.
        name: A name for the case (default: the app's).
    """

    def __init__(self, app: Any, name: str | None = None) -> None:
        super().__init__(app, name)
        if self._kernel is not app:
            raise TypeError(f"AsyncTestCase: {app!r} is a sync app: use qtasks.tests.SyncTestCase")
        self._serving: asyncio.Task[None] | None = None

    async def start(self, loop: Any = None, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """Start the app's components and, when the config keeps the worker and the broker, a
        worker with ``num_workers`` concurrent tasks as a task of the running asyncio loop.
        ``loop``, ``starter`` and ``reset_config`` are accepted for compatibility."""
        await self._kernel.start()
        if not self._serves() or self._serving is not None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "AsyncTestCase.start() runs the worker as an asyncio task, and no asyncio loop runs here (trio?): "
                "use `async with qtasks.testing.running_worker(app):` instead"
            ) from None
        self._serving = running.create_task(self._kernel.serve(num_workers, False))
        while self._kernel.worker is None:
            if self._serving.done():
                self._serving.result()  # serve() failed: raise its error
            await anyio.sleep(0)

    def start_in_background(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> asyncio.Task[None]:
        """Schedule :meth:`start` on the running asyncio loop and return its task (await it to
        know the worker has started)."""
        return asyncio.get_running_loop().create_task(self.start(num_workers=num_workers))

    async def stop(self) -> None:
        """Stop the worker (it drains first) and the components; give the app back its own
        components and plugins."""
        if self._serving is not None:
            serving, self._serving = self._serving, None
            await self._kernel.stop()
            await serving
        await self._kernel.close()
        self._restore()

    async def add_task(self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None, **kwargs: Any) -> Task | None:
        """Enqueue a task through the broker; with the worker and no broker, run it at once
        (eager mode) and return its final record.

        Raises:
            ConfigurationError: the config runs neither the worker nor the broker.
        """
        if self._route() == "broker":
            return await self._kernel.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        with eager(self._kernel):
            record = await self._kernel.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        return await self._kernel.get(record.uuid) if timeout is None and record is not None else record

    async def get(self, uuid: UUID | str) -> Task | None:
        """The task's stored record, or None."""
        return await self._kernel.get(uuid)

    async def __aenter__(self) -> AsyncTestCase:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()



class SyncTestCase(BaseTestCase):
    """A test case over a sync app (``qtasks.QueueTasks``).

    ``case.settings(TestConfig.full())``, then ``case.start()`` (it returns once a worker
    serves the app in the background), ``case.add_task(...)``, ``case.stop()``. Also
    ``with case:``. See docs/testing.md for what each :class:`TestConfig` runs.

    Args:
        app: The sync app under test.
        name: A name for the case (default: the app's).
    """

    def __init__(self, app: Any, name: str | None = None) -> None:
        super().__init__(app, name)
        if self._kernel is app:
            raise TypeError(f"SyncTestCase: {app!r} is an async app: use qtasks.tests.AsyncTestCase")
        self._worker: running_worker | None = None

    def start(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """Start the app's components and, when the config keeps the worker and the broker, a
        worker with ``num_workers`` concurrent tasks; returns once it serves (the original
        blocked in ``run_forever``). ``starter`` and ``reset_config`` are accepted for compatibility."""
        run_blocking(self._kernel, self._kernel.start)
        if self._serves() and self._worker is None:
            self._worker = running_worker(self.app, num_workers)
            self._worker.__enter__()

    def start_in_background(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """The same as :meth:`start`, which does not block."""
        self.start(starter, num_workers, reset_config)

    def stop(self) -> None:
        """Stop the worker (it drains first) and the components; give the app back its own
        components and plugins."""
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.__exit__(None, None, None)
        run_blocking(self._kernel, self._kernel.close)
        self._restore()

    def add_task(self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None, **kwargs: Any) -> Task | None:
        """Enqueue a task through the broker; with the worker and no broker, run it at once
        (eager mode) and return its final record.

        Raises:
            ConfigurationError: the config runs neither the worker nor the broker.
        """
        if self._route() == "broker":
            return self.app.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        with eager(self.app):
            record = self.app.add_task(task_name, *args, priority=priority, timeout=timeout, **kwargs)
        return self.app.get(record.uuid) if timeout is None and record is not None else record

    def get(self, uuid: UUID | str) -> Task | None:
        """The task's stored record, or None."""
        return self.app.get(uuid)

    def __enter__(self) -> SyncTestCase:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
