"""BaseTestCase: what AsyncTestCase and SyncTestCase share: the TestConfig, stand-ins and plugins set aside."""

from __future__ import annotations

from typing import Any

from qtasks._state import kernel_of
from qtasks.errors import ConfigurationError
from qtasks.kernel.components import STARTED_IN_ORDER, Components
from qtasks.kernel.config import QueueConfig
from qtasks.kernel.urls import scheme_of
from qtasks.schemas.test import TestConfig

__all__ = ["BaseTestCase", "STAND_IN_URL"]

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
