"""How commands print: JSON with ``--json``, rich tables on a terminal, aligned plain text otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

__all__ = ["iso_time", "to_json", "print_json", "plain_table", "print_rows", "print_record"]


def iso_time(moment: float | datetime) -> str:
    """Return a timestamp (seconds) or an aware datetime as ISO 8601 in UTC, to the second."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)  # whatever else a plugin put in a record: shown, never a crash


def to_json(value: Any, indent: int | None = None) -> str:
    """Return ``value`` as JSON; datetimes as ISO text, uuids as strings, anything else as its repr."""
    return json.dumps(value, indent=indent, default=_json_default, ensure_ascii=False)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    print(to_json(value, indent=2))


def plain_table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """Return aligned text: a header, a dashed rule, one line per row, no trailing spaces."""
    lines = [list(columns), *cells]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def _print_rich_table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, overflow="fold")
    for line in cells:
        table.add_row(*line)
    Console().print(table)


def print_rows(rows: list[dict[str, Any]], as_json: bool, empty: str, columns: Sequence[str],
               cells: Callable[[dict[str, Any]], list[str]]) -> None:
    """Print JSON with ``as_json``, ``empty`` for no rows, a rich table on a terminal, else aligned text."""
    if as_json:
        print_json(rows)
    elif not rows:
        print(empty)
    elif sys.stdout.isatty():
        _print_rich_table(columns, [cells(row) for row in rows])
    else:
        print(plain_table(columns, [cells(row) for row in rows]))


def print_record(fields: Sequence[tuple[str, str]], blocks: Sequence[tuple[str, str]]) -> None:
    """Print one record: ``name: value`` lines, then each multi-line block under its title.

    On a terminal the fields are a rich grid and the blocks are set off in colour; otherwise
    the fields are aligned ``name: value`` lines and each block is indented by two spaces.
    """
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        for name, value in fields:
            grid.add_row(name, Text(value))
        console.print(grid)
        for title, text in blocks:
            console.print(Text(f"{title}:", style="bold red"))
            console.print(Text(text.rstrip(), style="red"))
        return
    width = max((len(name) for name, _ in fields), default=0) + 1
    for name, value in fields:
        print(f"{name + ':':<{width}} {value}".rstrip())
    for title, text in blocks:
        print(f"{title}:")
        for line in text.rstrip().splitlines():
            print(f"  {line}".rstrip())
