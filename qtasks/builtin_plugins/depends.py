"""Depends: task arguments made by providers, created once per scope and closed when their scope ends."""

from __future__ import annotations

import enum
import inspect
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import attrs

from qtasks.builtin_plugins.depends_scopes import close_scopes, open_value, scope_store
from qtasks.errors import ConfigurationError, close_matches
from qtasks.hookspecs import hookimpl
from qtasks.kernel.model import ExecutionCall, TaskDefinition
from qtasks.kernel.signature import TaskParameter, task_parameters

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks
    from qtasks.kernel.registry import OptionRegistrar
    from qtasks.kernel.worker import Worker

__all__ = [
    "ScopeEnum",
    "Depends",
    "Dependency",
    "uses_depends",
    "task_dependencies",
    "qtasks_register_task_options",
    "qtasks_task_registered",
    "qtasks_task_resolve_args",
    "qtasks_shutdown",
]


class ScopeEnum(str, enum.Enum):
    """How long a ``Depends`` value lives: one task run, the worker, or a component of the app."""

    TASK = "task"
    WORKER = "worker"
    BROKER = "broker"
    STORAGE = "storage"
    GLOBAL_CONFIG = "global_config"

    def __str__(self) -> str:
        return self.value


# The long scopes in the order the app closes them (worker first, then the components).
CLOSING_ORDER = ("worker", "global_config", "storage", "broker")


def _scope(value: ScopeEnum | str) -> ScopeEnum:
    if isinstance(value, ScopeEnum):
        return value
    try:
        return ScopeEnum(value)
    except ValueError:
        valid = [s.value for s in ScopeEnum]
        hint = close_matches(value, valid) if isinstance(value, str) else ""
        raise ValueError(f"unknown Depends scope {value!r}{hint}: use one of {', '.join(valid)} (or ScopeEnum.TASK, ...)") from None


def _callable(_instance: Any, _attribute: Any, func: Any) -> None:
    if not callable(func):
        raise TypeError(f"Depends(...) needs a callable provider (a function, generator, context manager or partial), got {func!r}")


@attrs.frozen(repr=False)
class Depends:
    """Marks a task parameter whose value ``func()`` provides: ``db=Depends(open_db, scope="worker")``
    or ``db: Annotated[Database, Depends(open_db, scope="worker")]``.

    Args:
        func: The provider, called with no arguments: a function, a coroutine function, a sync or
            async generator function, a context-manager function, or a ``functools.partial``.
        scope: ``"task"`` (default: one value per run), ``"worker"``, ``"broker"``, ``"storage"``
            or ``"global_config"`` (one value until that scope ends), or a :class:`ScopeEnum`.
    """

    func: Callable[..., Any] = attrs.field(validator=_callable)
    scope: ScopeEnum = attrs.field(default=ScopeEnum.TASK, converter=_scope)

    def __repr__(self) -> str:
        return f"Depends({_name(self.func)}, scope={self.scope.value!r})"


@attrs.frozen
class Dependency:
    """A task parameter that a ``Depends`` fills."""

    parameter: TaskParameter
    depends: Depends


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def uses_depends(parameter: TaskParameter) -> bool:
    """True when the parameter is marked with ``Depends`` (default, ``Annotated`` extra, or an
    annotation string that mentions it)."""
    if isinstance(parameter.default, Depends) or any(isinstance(m, Depends) for m in parameter.metadata):
        return True
    return isinstance(parameter.annotation, str) and "Depends(" in parameter.annotation


def _unresolved(func: Callable[..., Any], annotation: str) -> str:
    """Why an annotation string cannot be evaluated in the function's module."""
    try:
        eval(annotation, dict(getattr(inspect.unwrap(func), "__globals__", {})))  # noqa: S307 - the function's own annotation
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "it did not resolve"


def _problem(func: Callable[..., Any], parameter: TaskParameter, found: list[Depends]) -> str | None:
    """What is wrong with a Depends parameter, and the fix; None when it is fine."""
    if not found:
        return (f"its annotation {parameter.annotation!r} mentions Depends but cannot be evaluated ({_unresolved(func, parameter.annotation)}); "
                "define the provider at module level, or write the parameter as `name: T = Depends(provider)`")
    if len(found) > 1:
        return f"it has {len(found)} Depends(...) markers; keep one"
    if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        return "Depends(...) cannot fill *args or **kwargs; give the value a named parameter"
    if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
        return "Depends(...) passes the value by keyword and this parameter is positional-only; move it after the '/'"
    provider = found[0].func
    try:
        signature = inspect.signature(provider)
    except (TypeError, ValueError):  # a builtin without a signature: it is called as it is
        return None
    try:
        signature.bind()
    except TypeError as error:
        return f"provider {_name(provider)} is called with no arguments, but {error}; bind them with functools.partial({_name(provider)}, ...)"
    nested = [p.name for p in signature.parameters.values() if isinstance(p.default, Depends)]
    if nested:
        return f"provider {_name(provider)} has Depends parameters ({', '.join(nested)}), which are not resolved; call those providers inside it"
    return None


_DEPENDENCIES: weakref.WeakKeyDictionary[TaskDefinition, tuple[Dependency, ...]] = weakref.WeakKeyDictionary()


def task_dependencies(definition: TaskDefinition) -> tuple[Dependency, ...]:
    """The Depends parameters of a task, checked once and cached per definition.

    Raises:
        ConfigurationError: A Depends parameter cannot work; the message names the task, the
            parameter and the fix.
    """
    cached = _DEPENDENCIES.get(definition)
    if cached is not None:
        return cached
    found: list[Dependency] = []
    for parameter in task_parameters(definition.func, bool(definition.echo)):
        if not uses_depends(parameter):
            continue
        markers = [m for m in parameter.metadata if isinstance(m, Depends)]
        if isinstance(parameter.default, Depends):
            markers.append(parameter.default)
        problem = _problem(definition.func, parameter, markers)
        if problem is not None:
            raise ConfigurationError(f"task {definition.name!r}: parameter {parameter.name!r}: {problem}")
        found.append(Dependency(parameter, markers[0]))
    result = tuple(found)
    _DEPENDENCIES[definition] = result
    return result


def _given(parameter: TaskParameter, call: ExecutionCall) -> bool:
    """True when the caller passed this argument itself (it then wins over the Depends)."""
    return parameter.name in call.kwargs or (parameter.position is not None and parameter.position < len(call.args))


@hookimpl
def qtasks_register_task_options(register: OptionRegistrar) -> None:
    """Declare the ``Depends(...)`` parameters, so that a task using them is refused while this
    plugin is disabled."""
    register.parameter("Depends(...)", uses_depends)


@hookimpl
def qtasks_task_registered(definition: TaskDefinition) -> None:
    """Check every Depends parameter of a task being registered (ConfigurationError if wrong)."""
    task_dependencies(definition)


async def _value(worker: Worker, depends: Depends, stack: AsyncExitStack, opened: dict[int, Any]) -> Any:
    """The value of one Depends: per run (entered on the run's stack) or from its scope's store."""
    if depends.scope is not ScopeEnum.TASK:
        return await scope_store(worker.app, depends.scope.value).get(depends.func, worker.threads)
    key = id(depends.func)
    if key not in opened:  # one value per provider per run, even for two parameters
        opened[key] = await open_value(depends.func, stack, worker.threads)
    return opened[key]


@hookimpl
def qtasks_task_resolve_args(worker: Worker, call: ExecutionCall, stack: AsyncExitStack) -> Awaitable[ExecutionCall] | None:
    """Pass each Depends value the caller did not give as a keyword argument (a sync hook that
    returns a coroutine only when there is something to open, so other tasks pay no await)."""
    dependencies = task_dependencies(call.definition)
    if not dependencies:
        return None
    wanted = [d for d in dependencies if not _given(d.parameter, call)]
    return _inject(worker, call, stack, wanted) if wanted else None


async def _inject(worker: Worker, call: ExecutionCall, stack: AsyncExitStack, wanted: list[Dependency]) -> ExecutionCall:
    kwargs = dict(call.kwargs)
    opened: dict[int, Any] = {}
    for dependency in wanted:
        kwargs[dependency.parameter.name] = await _value(worker, dependency.depends, stack, opened)
    return attrs.evolve(call, kwargs=kwargs)


@hookimpl
async def qtasks_shutdown(app: AsyncQueueTasks, component: str) -> None:
    """Close the values of the scope that ends: worker, broker, storage or global_config; when the
    app itself stops, every value still open (worker scope first)."""
    if component == "app":
        await close_scopes(app, CLOSING_ORDER)
    elif component in CLOSING_ORDER:
        await close_scopes(app, (component,))
