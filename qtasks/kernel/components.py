"""The app's components: made by the first-result ``make_*`` hooks, started and stopped in order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from qtasks.errors import ConfigurationError
from qtasks.kernel.steps import Steps
from qtasks.kernel.urls import redact_url, unknown_scheme_hint

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["Components", "STARTED_IN_ORDER"]

STARTED_IN_ORDER = ("broker", "storage", "global_config")


class Components:
    """Makes each component once (a ready object given to the app wins), then starts them in order.

    Args:
        app: The app whose plugin manager provides the components.
        given: Components passed to the app's constructor, by kind (None when not given).
    """

    def __init__(self, app: AsyncQueueTasks, given: dict[str, Any]) -> None:
        self._app = app
        self._made: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        self.started = False
        self.steps: Steps | None = None
        self._lock: anyio.Lock | None = None

    def missing(self, what: str) -> ConfigurationError:
        """The error for a component that no plugin provides, naming blocked plugins."""
        app = self._app
        hook = f"qtasks_make_{what}"
        blocked = [b for b in app.blocked if what in b]
        if blocked:
            names = ", ".join(repr(b) for b in blocked)
            return ConfigurationError(f"no {what}: {names} blocked and nothing implements {hook} for {redact_url(app.url)!r}")
        return ConfigurationError(f"no {what} for {redact_url(app.url)!r}: {unknown_scheme_hint(app.url)} (nothing implements {hook} for it)")

    def get(self, what: str) -> Any:
        """Return the component of kind ``what``, making it on first use."""
        component = self._made.get(what)
        if component is None:
            hook = getattr(self._app.pm.hook, f"qtasks_make_{what}")
            component = hook(app=self._app) if what == "serializer" else hook(app=self._app, url=self._app.url)
            if component is None:
                raise self.missing(what)
            self._made[what] = component
        return component

    async def start(self) -> None:
        """Make every component and start them: app, broker, storage, global_config."""
        if self.started:
            return
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self.started:
                return
            self.get("serializer")
            components = [(what, self.get(what)) for what in STARTED_IN_ORDER]
            self.steps = Steps(self.get("broker"), self.get("storage"))
            notify = self._app.dispatcher.notify
            await notify("qtasks_startup", app=self._app, component="app")
            for what, component in components:
                await component.start()
                await notify("qtasks_startup", app=self._app, component=what)
            self.started = True

    async def close(self) -> None:
        """Stop the started components in reverse order, firing ``qtasks_shutdown`` before each."""
        if not self.started:
            return
        self.started = False
        notify = self._app.dispatcher.notify
        for what in reversed(STARTED_IN_ORDER):
            await notify("qtasks_shutdown", app=self._app, component=what)
            await self._made[what].stop()
        await notify("qtasks_shutdown", app=self._app, component="app")
