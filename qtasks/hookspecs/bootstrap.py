"""Bootstrap hooks: declaring task options and CLI commands, configuring the app, internal errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtasks.hookspecs import trigger

if TYPE_CHECKING:
    import argparse

    from qtasks.kernel.app import AsyncQueueTasks
    from qtasks.kernel.model import TaskDefinition
    from qtasks.kernel.registry import OptionRegistrar

__all__ = ["qtasks_register_task_options", "qtasks_task_registered", "qtasks_register_commands", "qtasks_configure", "qtasks_internal_error"]


@trigger("register", {"app"})
def qtasks_register_task_options(register: OptionRegistrar) -> None:
    """Declare the ``@app.task(...)`` options a plugin owns.

    Fired by the app for each plugin: at construction, and when ``add_plugin`` adds one later
    (sync-only). Call
    ``register(name, default=..., doc=..., check=...)`` for each option; ``@app.task`` rejects any
    option that nobody declared, naming close matches, or the blocked plugin that owns it, and a
    value that ``check(value)`` refuses (it raises ``TypeError`` or ``ValueError`` saying what the
    value should be; ``@app.task`` raises ``ConfigurationError`` naming the task and the option).
    ``register.parameter(uses, matches)`` declares the task parameters a plugin gives meaning to
    (``matches(TaskParameter) -> bool``); while that plugin is blocked, ``@app.task`` rejects a
    task with such a parameter, naming the plugin. The return value is ignored.
    """


@trigger("register", {"app"})
def qtasks_task_registered(app: AsyncQueueTasks, definition: TaskDefinition) -> None:
    """A task is being registered by ``@app.task``; its options have passed their checks.

    Fired by the app before the definition is stored (sync-only), so a plugin can check what it
    will later act on (a ``Depends`` provider, a ``State`` annotation on the right kind of
    function) and raise ``ConfigurationError`` naming the problem and the fix: the task is then
    not registered. The return value is ignored.
    """


@trigger("register", {"app"})
def qtasks_register_commands(commands: argparse._SubParsersAction, app: AsyncQueueTasks) -> None:
    """Add subcommands to the ``qtasks`` CLI.

    Fired by the CLI after it loads the app (sync-only). Call ``commands.add_parser(name)`` and set
    ``func=`` on the parser with ``set_defaults(func=callable(args, app) -> int)``. The return
    value is ignored.
    """


@trigger("register", {"app"})
def qtasks_configure(app: AsyncQueueTasks) -> None:
    """React to the app's final plugin set.

    Fired by the app once its builtins, entry-point plugins and ``plugins=`` are registered
    (sync-only); plugins added later with ``add_plugin`` do not see it. The return value is ignored.
    """


@trigger("register", {"app", "worker", "broker", "storage", "global_config"})
def qtasks_internal_error(app: AsyncQueueTasks, error: BaseException, where: str) -> None:
    """Report an error the kernel caught and went past, such as an observer hook that raised.

    Fired by the dispatcher (sync-only); ``where`` names the hook and plugin. Errors raised by
    implementations of this hook are logged and dropped. The return value is ignored.
    """
