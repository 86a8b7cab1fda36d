"""The ``qtasks plugins list`` and ``qtasks plugins hooks`` commands: what is registered, and hook call order."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from qtasks.cli_output import plain_table
from qtasks.errors import close_matches
from qtasks.hookspecs import SYNC_MODES, hookimpl

if TYPE_CHECKING:
    import argparse

    from qtasks.kernel.app import AsyncQueueTasks

__all__ = ["qtasks_register_commands", "plugin_rows", "hook_rows", "list_command", "hooks_command"]

COLUMNS = ("name", "origin", "component", "hooks", "source")


@hookimpl
def qtasks_register_commands(commands: argparse._SubParsersAction, app: AsyncQueueTasks) -> None:
    """Add ``plugins list`` and ``plugins hooks`` to the CLI."""
    plugins = commands.add_parser("plugins", help="list the plugins and the call order of every hook",
                                  description="Inspect the app's plugins and hooks.")
    sub = plugins.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND", title="subcommands", required=True)
    listing = sub.add_parser("list", help="the registered plugins (builtins only with --all)",
                             description="List the registered plugins; blocked ones are always shown.")
    listing.add_argument("--all", action="store_true", help="also list the builtin plugins")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    listing.set_defaults(func=list_command)
    hooks = sub.add_parser("hooks", help="every hook, its mode and its implementations in call order",
                           description="Show each hook's mode and its implementations in the order they are called.")
    hooks.add_argument("name", nargs="?", help="only this hook (qtasks_startup or startup)")
    hooks.add_argument("--json", action="store_true", help="print a JSON list of objects")
    hooks.set_defaults(func=hooks_command)


def plugin_rows(app: AsyncQueueTasks, show_all: bool = False) -> list[dict[str, Any]]:
    """Return the rows of ``plugins list``: builtins only with ``show_all``, blocked ones always."""
    return [
        {"name": row.name, "origin": row.origin, "component": row.component, "hooks": list(row.hooks),
         "source": row.source, "blocked": row.blocked}
        for row in app.pm.plugin_info()
        if show_all or row.blocked or row.origin != "builtin"
    ]


def _implementation(impl: Any) -> dict[str, Any]:
    function = impl.function
    flags = [flag for flag in ("tryfirst", "trylast", "wrapper", "hookwrapper") if getattr(impl, flag, False)]
    qualname = getattr(function, "__qualname__", repr(function))
    return {"plugin": impl.plugin_name, "function": f"{getattr(function, '__module__', '?')}.{qualname}", "flags": flags}


def hook_rows(app: AsyncQueueTasks, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Return, per hook, its mode and implementations in real call order.

    Async hooks use the dispatcher's cached chain (shutdown's reverse order included); sync hooks
    (``make``, ``register``) are called by pluggy, last registered first.
    """
    rows = []
    for hook in names or list(app.pm.specs):
        spec = app.pm.specs[hook]
        impls = getattr(app.pm.hook, hook).get_hookimpls()
        if spec.mode in SYNC_MODES:
            ordered = list(reversed(impls))
        else:
            by_plugin = {impl.plugin_name: impl for impl in impls}
            ordered = [by_plugin[entry[3]] for entry in app.dispatcher.chain(hook)]
        rows.append({"hook": hook, "mode": spec.mode, "reverse": spec.reverse,
                     "implementations": [_implementation(impl) for impl in ordered]})
    return rows


def _cell(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if column == "name" and row["blocked"]:
        return f"{value} (blocked)"
    if column == "hooks":
        return ", ".join(value) or "-"
    return "-" if value is None else str(value)


def _print_rich_table(rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(_cell(row, column), style="red" if row["blocked"] else "") for column in COLUMNS))
    Console().print(table)


def list_command(args: argparse.Namespace, app: AsyncQueueTasks) -> int:
    """Print the plugins: JSON with ``--json``, a rich table on a terminal, aligned text otherwise."""
    rows = plugin_rows(app, args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no plugins besides the builtins (--all lists them too)")
    elif sys.stdout.isatty():
        _print_rich_table(rows)
    else:
        print(plain_table(COLUMNS, [[_cell(row, column) for column in COLUMNS] for row in rows]))
    return 0


def _resolve(app: AsyncQueueTasks, name: str) -> str | None:
    full = name if name.startswith("qtasks_") else f"qtasks_{name}"
    return full if full in app.pm.specs else None


def _title(row: dict[str, Any]) -> str:
    return f"({row['mode']}{', reverse order' if row['reverse'] else ''})"


def _label(index: int, impl: dict[str, Any]) -> str:
    flags = f" [{', '.join(impl['flags'])}]" if impl["flags"] else ""
    return f"{index}. {impl['plugin']}{flags}"


def _print_hook_tree(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    root = Tree(Text("hooks, implementations in call order", style="bold"))
    for row in rows:
        node = root.add(Text.assemble((row["hook"], "bold cyan"), " ", (_title(row), "dim")))
        for index, impl in enumerate(row["implementations"], 1):
            node.add(Text(_label(index, impl)))
        if not row["implementations"]:
            node.add(Text("(no implementations)", style="dim"))
    Console().print(root)


def hooks_command(args: argparse.Namespace, app: AsyncQueueTasks) -> int:
    """Print each hook with its implementations in call order; status 2 for an unknown hook name."""
    names = None
    if args.name is not None:
        hook = _resolve(app, args.name)
        if hook is None:
            full = args.name if args.name.startswith("qtasks_") else f"qtasks_{args.name}"
            print(f"qtasks plugins hooks: error: unknown hook {args.name!r}{close_matches(full, app.pm.specs)}; "
                  "`qtasks -A module:attr plugins hooks` lists them all", file=sys.stderr)
            return 2
        names = [hook]
    rows = hook_rows(app, names)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif sys.stdout.isatty():
        _print_hook_tree(rows)
    else:
        for row in rows:
            print(f"{row['hook']} {_title(row)}")
            for index, impl in enumerate(row["implementations"], 1):
                print(f"  {_label(index, impl)}")
            if not row["implementations"]:
                print("  (no implementations)")
    return 0
