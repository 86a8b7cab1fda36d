"""Depends values: opening a provider's value by its kind, and the per-app stores of the long scopes."""

from __future__ import annotations

import inspect
import sys
import threading
import weakref
from collections.abc import Callable
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from functools import partial
from types import TracebackType
from typing import Any

import anyio

if sys.version_info < (3, 11):  # pragma: no cover - the backport is a dependency there
    from exceptiongroup import ExceptionGroup

__all__ = ["open_value", "ScopeStore", "scope_store", "close_scopes", "is_async_provider"]

Limiter = anyio.CapacityLimiter


def is_async_provider(provider: Callable[..., Any]) -> bool:
    """True when ``provider`` runs on the event loop: an ``async def`` (or an object whose
    ``__call__`` is one), an async generator function, or an ``@asynccontextmanager`` function."""
    return (
        inspect.iscoroutinefunction(provider)
        or inspect.isasyncgenfunction(provider)
        or inspect.isasyncgenfunction(inspect.unwrap(provider))
        or inspect.iscoroutinefunction(getattr(type(provider), "__call__", None))
    )


def _same(value: Any) -> Any:
    return value


def _as_context(made: Any) -> Any:
    """A generator (sync or async) becomes a context manager around its first value."""
    if inspect.isasyncgen(made):
        return asynccontextmanager(_same)(made)
    if inspect.isgenerator(made):
        return contextmanager(_same)(made)
    return made


def _call_sync(provider: Callable[..., Any]) -> Any:
    """Call a sync provider (in a worker thread); a generator function gives a context manager."""
    if inspect.isgeneratorfunction(provider):
        return contextmanager(provider)()
    return provider()


async def _exit_async(made: Any, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
    with anyio.CancelScope(shield=True):  # the cleanup runs even when the run is being cancelled
        await made.__aexit__(exc_type, exc, tb)
    return False  # a dependency sees the task's error but cannot swallow it


async def _exit_in_thread(made: Any, limiter: Limiter, exc_type: type[BaseException] | None, exc: BaseException | None,
                          tb: TracebackType | None) -> bool:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(made.__exit__, exc_type, exc, tb, limiter=limiter)
    return False


async def open_value(provider: Callable[..., Any], stack: AsyncExitStack, limiter: Limiter) -> Any:
    """Call ``provider`` and return its value; what must be closed later is pushed onto ``stack``.

    Async providers run on the loop; sync ones (functions, generators, context managers) run in a
    worker thread under ``limiter``, and so do the ``__enter__``/``__exit__`` of a sync context
    manager. An awaitable result is awaited; a context manager (or generator) result is entered,
    and its exit is pushed onto ``stack``. The exit sees the error that ends the scope, but its
    return value is ignored: a dependency cannot swallow a task's error.
    """
    if inspect.isasyncgenfunction(provider):
        made: Any = asynccontextmanager(provider)()
    elif is_async_provider(provider):
        made = provider()
    else:
        made = await anyio.to_thread.run_sync(_call_sync, provider, limiter=limiter)
    if inspect.isawaitable(made):
        made = await made
    made = _as_context(made)
    kind = type(made)
    if hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__"):
        value = await made.__aenter__()
        stack.push_async_exit(partial(_exit_async, made))
        return value
    if hasattr(kind, "__enter__") and hasattr(kind, "__exit__"):
        value = await anyio.to_thread.run_sync(made.__enter__, limiter=limiter)
        stack.push_async_exit(partial(_exit_in_thread, made, limiter))
        return value
    return made


class ScopeStore:
    """The values of one long scope (worker, broker, storage, global_config) of one app.

    Each provider's value is created once (concurrent first uses wait on one lock per provider)
    and kept until :meth:`close`, which closes every value once, newest first, and empties the
    store so that a later worker can create the values again.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self._values: dict[int, tuple[Callable[..., Any], Any, AsyncExitStack]] = {}
        self._locks: dict[int, anyio.Lock] = {}

    def __len__(self) -> int:
        return len(self._values)

    async def get(self, provider: Callable[..., Any], limiter: Limiter) -> Any:
        """Return ``provider``'s value in this scope, creating it on first use."""
        key = id(provider)  # the entry holds the provider, so the id is not reused while it lives
        entry = self._values.get(key)
        if entry is not None:
            return entry[1]
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            entry = self._values.get(key)
            if entry is None:
                stack = AsyncExitStack()
                entry = (provider, await open_value(provider, stack, limiter), stack)
                self._values[key] = entry
        return entry[1]

    async def close(self) -> None:
        """Close every value once, newest first; each is closed even when another's cleanup
        raises (the errors are raised after, one alone or as an ExceptionGroup)."""
        entries = list(self._values.values())
        self._values.clear()
        self._locks.clear()
        errors: list[Exception] = []
        for _provider, _value, stack in reversed(entries):
            try:
                await stack.aclose()
            except Exception as error:  # the other values still close
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"closing {len(errors)} Depends value(s) of scope {self.scope!r} failed", errors)


_STORES: weakref.WeakKeyDictionary[Any, dict[str, ScopeStore]] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()  # sync apps run their loops in threads of their own


def scope_store(app: Any, scope: str) -> ScopeStore:
    """The store of ``scope`` for ``app`` (made on first use)."""
    stores = _STORES.get(app)
    if stores is None:
        with _STORES_LOCK:
            stores = _STORES.setdefault(app, {})
    store = stores.get(scope)
    if store is None:
        store = stores.setdefault(scope, ScopeStore(scope))
    return store


async def close_scopes(app: Any, scopes: tuple[str, ...]) -> None:
    """Close ``app``'s values of each of ``scopes``, in that order; every scope is closed even
    when one raises, and the first error is raised after."""
    stores = _STORES.get(app, {})
    failure: Exception | None = None
    for scope in scopes:
        store = stores.get(scope)
        if store is None:
            continue
        try:
            await store.close()
        except Exception as error:  # the later scopes still close
            failure = failure or error
    if failure is not None:
        raise failure
