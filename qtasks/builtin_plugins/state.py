"""state: ``AsyncState`` / ``SyncState`` key/value state, injected into tasks by annotation."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar

import attrs
import cattrs

from qtasks._state import kernel_of
from qtasks.builtin_plugins.serializer import json_encoder
from qtasks.errors import ConfigurationError, SerializationError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import ExecutionCall, TaskDefinition
from qtasks.kernel.portal import run_blocking
from qtasks.kernel.signature import TaskParameter, task_parameters

__all__ = ["AsyncState", "SyncState", "STATE_PREFIX", "qtasks_register_task_options", "qtasks_task_registered", "qtasks_task_resolve_args"]

STATE_PREFIX = "qtasks:state:"  # global config name: qtasks:state:<app name>:<state name>
_ENCODER = json_encoder(cattrs.Converter())


class _SharedState:
    """What both kinds of state share: the app, the global config name and the JSON checks.

    Attributes:
        state_name: Set it on a subclass to choose the stored name (default: the class's
            ``__qualname__``); two classes with the same name share one state.
    """

    state_name: ClassVar[str | None] = None

    def __init__(self, app: Any) -> None:
        kernel = kernel_of(app) if app is not None else None
        if kernel is None or not hasattr(kernel, "components"):
            raise TypeError(f"{type(self).__qualname__}(app): pass the QueueTasks app (sync or async) the state belongs to, got {app!r}")
        self.app = kernel
        self.name = f"{STATE_PREFIX}{kernel.name}:{type(self).state_name or type(self).__qualname__}"

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name!r}>"

    async def _config(self) -> Any:
        if not self.app.components.started:
            await self.app.start()
        return self.app.components.get("global_config")

    def _key(self, key: Any) -> str:
        if not isinstance(key, str) or not key:
            raise TypeError(f"{type(self).__qualname__}: a key must be a non-empty string, got {key!r}")
        return key

    def _plain(self, key: str, value: Any) -> Any:
        """Return ``value`` as JSON types (attrs classes and dataclasses become dicts), or raise
        naming the key and the fix."""
        try:
            return json.loads(_ENCODER.encode(value))
        except (TypeError, ValueError) as error:
            raise SerializationError(
                f"{type(self).__qualname__}: key {key!r}: the value cannot be stored as JSON ({error}); store str, int, float, "
                "bool, None, lists and dicts of them, attrs classes or dataclasses"
            ) from None

    async def _get(self, key: str | None, default: Any) -> Any:
        config = await self._config()
        if key is None:
            return copy.deepcopy(await config.get_all(self.name))
        value = await config.get(self.name, self._key(key))
        return default if value is None else copy.deepcopy(value)

    async def _set(self, key: str, value: Any) -> None:
        key = self._key(key)
        await (await self._config()).set(self.name, key, self._plain(key, value))

    async def _update(self, values: Mapping[str, Any] | None, more: Mapping[str, Any]) -> dict[str, Any]:
        changes = {self._key(key): value for key, value in {**(values or {}), **more}.items()}
        config = await self._config()
        await config.set_many(self.name, {key: self._plain(key, value) for key, value in changes.items()})
        return copy.deepcopy(await config.get_all(self.name))

    async def _delete(self, key: str) -> None:
        await (await self._config()).delete(self.name, self._key(key))

    async def _clear(self) -> None:
        await (await self._config()).delete(self.name)


class AsyncState(_SharedState):
    """Key/value state of an app, for ``async def`` tasks: annotate a parameter with a subclass.

    It lives in the app's global config: in the process on ``memory://``, shared by every
    worker on ``redis://`` and ``sqlite://``. Each method is one atomic step of the store.
    """

    async def get(self, key: str | None = None, default: Any = None) -> Any:
        """Return the value of ``key`` (``default`` when absent or None), or a dict of every key
        when ``key`` is None; always a copy."""
        return await self._get(key, default)

    async def get_all(self) -> dict[str, Any]:
        """Return a dict of every key (a copy)."""
        return await self._get(None, None)

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON types, attrs classes or dataclasses) under ``key``."""
        await self._set(key, value)

    async def update(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> dict[str, Any]:
        """Store several keys in one atomic step; return every key afterwards."""
        return await self._update(values, more)

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        await self._delete(key)

    async def clear(self) -> None:
        """Remove every key."""
        await self._clear()


class SyncState(_SharedState):
    """Key/value state of an app, for plain ``def`` tasks (they run in worker threads): the same
    methods as :class:`AsyncState`, blocking until the app's event loop has done them."""

    def get(self, key: str | None = None, default: Any = None) -> Any:
        """Return the value of ``key`` (``default`` when absent or None), or a dict of every key
        when ``key`` is None; always a copy."""
        return run_blocking(self.app, self._get, key, default)

    def get_all(self) -> dict[str, Any]:
        """Return a dict of every key (a copy)."""
        return run_blocking(self.app, self._get, None, None)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON types, attrs classes or dataclasses) under ``key``."""
        run_blocking(self.app, self._set, key, value)

    def update(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> dict[str, Any]:
        """Store several keys in one atomic step; return every key afterwards."""
        return run_blocking(self.app, self._update, values, more)

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        run_blocking(self.app, self._delete, key)

    def clear(self) -> None:
        """Remove every key."""
        run_blocking(self.app, self._clear)


def _state_class(parameter: TaskParameter) -> type[_SharedState] | None:
    """The state class a parameter is annotated with (directly, Optional or Annotated), or None."""
    if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        return None
    base = parameter.base
    return base if isinstance(base, type) and issubclass(base, (AsyncState, SyncState)) else None


@lru_cache(maxsize=4096)
def _state_parameters(func: Any, echo: bool) -> tuple[tuple[TaskParameter, type[_SharedState]], ...]:
    found = ((parameter, _state_class(parameter)) for parameter in task_parameters(func, echo))
    return tuple((parameter, cls) for parameter, cls in found if cls is not None)


def _kind(definition: TaskDefinition) -> str:
    if definition.generating == "async":
        return "an async generator function"
    if definition.generating:
        return "a sync generator function"
    return "an async function" if definition.awaiting else "a sync function"


@hookimpl
def qtasks_register_task_options(register: Any) -> None:
    """Declare the State annotation, so that a task using one is refused while this plugin is blocked."""
    register.parameter("a State annotation", lambda parameter: _state_class(parameter) is not None)


@hookimpl
def qtasks_task_registered(app: Any, definition: TaskDefinition) -> None:
    """Refuse an AsyncState in a sync task (it could not await it) and a SyncState in an async
    task (it would block the event loop), and a positional-only state parameter."""
    asynchronous = definition.awaiting or definition.generating == "async"
    for parameter, cls in _state_parameters(definition.func, bool(definition.echo)):
        where = f"task {definition.name!r}: parameter {parameter.name!r}"
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ConfigurationError(f"{where} is a state ({cls.__qualname__}) and positional-only; remove the '/' so it can be passed by name")
        if issubclass(cls, AsyncState) and not asynchronous:
            raise ConfigurationError(
                f"{where} is an AsyncState ({cls.__qualname__}) but {definition.name} is {_kind(definition)}; subclass SyncState instead"
            )
        if issubclass(cls, SyncState) and asynchronous:
            raise ConfigurationError(
                f"{where} is a SyncState ({cls.__qualname__}) but {definition.name} is {_kind(definition)}, where its blocking "
                "calls would stop the event loop; subclass AsyncState instead"
            )


@hookimpl
def qtasks_task_resolve_args(worker: Any, call: ExecutionCall) -> ExecutionCall | None:
    """Pass a state bound to the app to each state parameter the caller did not pass."""
    wanted = _state_parameters(call.definition.func, bool(call.definition.echo))
    if not wanted:
        return None
    added = {
        parameter.name: cls(worker.app) for parameter, cls in wanted
        if parameter.name not in call.kwargs and (parameter.position is None or parameter.position >= len(call.args))
    }
    return attrs.evolve(call, kwargs={**call.kwargs, **added}) if added else None
