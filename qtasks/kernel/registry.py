"""The task registry: ``@app.task`` options, declared by the kernel and by plugins, and definitions."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from qtasks.errors import ConfigurationError, UnknownOptionError, close_matches
from qtasks.kernel.model import TaskDefinition
from qtasks.kernel.signature import TaskParameter, task_parameters

if TYPE_CHECKING:
    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["OptionSpec", "ParameterMarker", "OptionRegistrar", "TaskRegistry", "KERNEL_OPTIONS", "task_decorator"]

H = TypeVar("H")

_FIELDS = {f.name for f in attrs.fields(TaskDefinition)}


@attrs.frozen
class OptionSpec:
    """One declared task option and the plugin that owns it."""

    name: str
    owner: str
    default: Any = None
    doc: str = ""
    check: Callable[[Any], None] | None = None


@attrs.frozen
class ParameterMarker:
    """Task parameters a plugin gives meaning to (``Depends``, a ``State`` annotation, ...)."""

    owner: str
    uses: str
    matches: Callable[[TaskParameter], bool]


class OptionRegistrar:
    """Passed to ``qtasks_register_task_options``: call it to declare an option."""

    def __init__(self, owner: str, into: dict[str, OptionSpec], markers: list[ParameterMarker] | None = None) -> None:
        self.owner = owner
        self._into = into
        self._markers = markers if markers is not None else []

    def parameter(self, uses: str, matches: Callable[[TaskParameter], bool]) -> None:
        """Declare that this plugin gives meaning to task parameters for which ``matches(p)`` is
        true; ``uses`` says what they use (e.g. ``"Depends(...)"``). While the plugin is blocked,
        ``@app.task`` rejects a task with such a parameter, naming the plugin."""
        self._markers.append(ParameterMarker(self.owner, uses, matches))

    def __call__(self, name: str, default: Any = None, doc: str = "", check: Callable[[Any], None] | None = None) -> None:
        """Declare option ``name`` with its ``default`` and a one-line ``doc``; ``check(value)``, if
        given, raises ``TypeError`` or ``ValueError`` saying what a given value should be."""
        if not name.isidentifier():
            raise ConfigurationError(f"plugin {self.owner!r} declares option {name!r}: use a Python identifier")
        previous = self._into.get(name)
        if previous is not None and previous.owner != self.owner:
            raise ConfigurationError(f"task option {name!r} is declared by both {previous.owner!r} and {self.owner!r}")
        self._into[name] = OptionSpec(name, self.owner, default, doc, check)


KERNEL_OPTIONS = {
    "priority": "Default enqueue priority; a lower number runs first.",
    "tags": "Metadata: a list of labels.",
    "description": "Metadata: a description.",
    "extra": "Metadata: a dict stored with the definition.",
}


class TaskRegistry:
    """Holds an app's task definitions and the options that ``@app.task`` accepts."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskDefinition] = {}
        self.options: dict[str, OptionSpec] = {n: OptionSpec(n, "kernel", None, d) for n, d in KERNEL_OPTIONS.items()}
        self.blocked_options: dict[str, OptionSpec] = {}
        self.blocked_markers: list[ParameterMarker] = []

    def registrar(self, owner: str, blocked: bool = False) -> OptionRegistrar:
        """Return the registrar a plugin named ``owner`` declares its options with."""
        if blocked:
            return OptionRegistrar(owner, self.blocked_options, self.blocked_markers)
        return OptionRegistrar(owner, self.options)

    def check_parameters(self, task_name: str, func: Callable[..., Any], echo: bool) -> None:
        """Raise ``UnknownOptionError`` for a parameter that only a blocked plugin understands."""
        if not self.blocked_markers:
            return
        for parameter in task_parameters(func, echo):
            for marker in self.blocked_markers:
                if marker.matches(parameter):
                    raise UnknownOptionError(
                        f"task {task_name!r}: parameter {parameter.name!r} uses {marker.uses}, which plugin {marker.owner!r} "
                        f"provides, and it is disabled; remove {marker.owner!r} from disable_plugins / QTASKS_DISABLE_PLUGINS, "
                        "or change the parameter"
                    )

    def check_options(self, task_name: str, options: dict[str, Any]) -> None:
        """Raise ``UnknownOptionError`` for an option nobody declared, naming the fix."""
        for key in options:
            if key in self.options:
                continue
            blocked = self.blocked_options.get(key)
            if blocked is not None:
                raise UnknownOptionError(
                    f"task {task_name!r}: option {key!r} belongs to plugin {blocked.owner!r}, which is disabled; "
                    f"remove {blocked.owner!r} from disable_plugins / QTASKS_DISABLE_PLUGINS, or drop the option"
                )
            raise UnknownOptionError(
                f"task {task_name!r}: unknown option {key!r}{close_matches(key, self.options)}; "
                f"known options: {', '.join(sorted(self.options))}"
            )

    def define(
        self, func: Callable[..., Any], name: str | None, default_priority: int, options: dict[str, Any],
        validate: Callable[[TaskDefinition], None] | None = None,
    ) -> TaskDefinition:
        """Validate ``options`` and register a definition for ``func``; duplicate names are errors.

        ``validate(definition)`` runs before the definition is stored; raising aborts it."""
        if not callable(func):
            raise TypeError(f"@task expects a function, got {type(func).__name__}")
        task_name = name or func.__name__
        if not isinstance(task_name, str) or not task_name:
            raise ConfigurationError(f"task name must be a non-empty string, got {task_name!r}")
        self.check_options(task_name, options)
        for key, value in options.items():
            spec = self.options[key]
            if spec.check is not None and value is not None:
                try:
                    spec.check(value)
                except (TypeError, ValueError) as error:
                    raise ConfigurationError(f"task {task_name!r}: {key}={value!r}: {error}") from None
        if task_name in self.tasks:
            earlier = self.tasks[task_name].func
            raise ConfigurationError(
                f"a task named {task_name!r} is already registered ({getattr(earlier, '__module__', '?')}."
                f"{getattr(earlier, '__qualname__', repr(earlier))}): "
                "pass name='...' to tell them apart"
            )
        values = {k: spec.default for k, spec in self.options.items() if spec.owner != "kernel" and spec.default is not None}
        values.update(options)
        fields = {k: v for k, v in values.items() if k in _FIELDS and v is not None}
        plugin_options = {k: v for k, v in values.items() if k not in _FIELDS}
        if fields.get("priority") is None:
            fields["priority"] = default_priority
        generating: str | bool = False
        if inspect.isasyncgenfunction(func):
            generating = "async"
        elif inspect.isgeneratorfunction(func):
            generating = "sync"
        definition = TaskDefinition(
            name=task_name,
            func=func,
            awaiting=inspect.iscoroutinefunction(func),
            generating=generating,
            options=plugin_options,
            **fields,
        )
        self.check_parameters(task_name, func, bool(definition.echo))
        if validate is not None:
            validate(definition)
        self.tasks[task_name] = definition
        return definition

    def remove(self, task_name: str) -> TaskDefinition | None:
        """Drop a definition (a router include or a shared task undone); return it, or None."""
        return self.tasks.pop(task_name, None)


def task_decorator(app: AsyncQueueTasks, handle: Callable[[TaskDefinition], H], name_or_func: Any, options: dict[str, Any]) -> Any:
    """Implement ``@app.task`` bare and called: register the function, return ``handle(definition)``."""

    def register(func: Callable[..., Any], name: str | None = None) -> H:
        return handle(app.registry.define(func, name, app.config.task_default_priority, options, app.validate_task))

    if callable(name_or_func):
        return register(name_or_func)
    if name_or_func is not None and not isinstance(name_or_func, str):
        raise TypeError(f"@task(name) expects a string name, got {type(name_or_func).__name__}")
    return lambda func: register(func, options.pop("name", None) or name_or_func)
