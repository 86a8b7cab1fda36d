"""How ``qtasks stats inspect`` and ``qtasks top`` draw an app's stats: titled tables, rich or plain."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from qtasks.cli_output import iso_time, plain_table, to_json
from qtasks.kernel.protocols import QueueCounts
from qtasks.stats import Overview, Throughput, WorkerStats

__all__ = [
    "Section", "queue_section", "status_section", "throughput_section", "worker_section", "overview_sections",
    "field_sections", "sections_for", "header_line", "plain_text", "rich_view", "show",
]

FINAL_ORDER = ("success", "error", "cancel")
NO_QUEUE_COUNTS = "n/a (the broker does not count its queue: no queue_counts())"
NO_RECORD_COUNTS = "n/a (the storage does not count its records: no status_counts() / finished_within())"


@attrs.frozen
class Section:
    """One titled table; ``empty`` is shown instead when it has no rows."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"


def queue_section(counts: QueueCounts | None) -> Section:
    """The queue: ready tasks by priority, then delayed, leased and dead ones."""
    columns = ("state", "priority", "tasks")
    if counts is None:
        return Section("queue", columns, (), NO_QUEUE_COUNTS)
    ready = [("ready", str(priority), str(count)) for priority, count in sorted(counts.ready.items())] or [("ready", "-", "0")]
    others = [(state, "-", str(getattr(counts, state))) for state in ("delayed", "leased", "dead")]
    return Section("queue", columns, (*ready, *others))


def status_section(statuses: Mapping[str, int] | None) -> Section:
    """The records kept, one column per status."""
    if statuses is None:
        return Section("tasks by status", ("status",), (), NO_RECORD_COUNTS)
    return Section("tasks by status (records kept)", tuple(statuses), (tuple(str(count) for count in statuses.values()),))


def throughput_section(throughput: Throughput | None) -> Section:
    """The tasks finished in the window, by status, with the total and the rate."""
    if throughput is None:
        return Section("finished", ("status",), (), NO_RECORD_COUNTS)
    statuses = [*FINAL_ORDER, *sorted(set(throughput.finished) - set(FINAL_ORDER))]
    cells = [str(throughput.finished.get(status, 0)) for status in statuses]
    return Section(f"finished in the last {throughput.window:g}s", (*statuses, "total", "per second"),
                   ((*cells, str(throughput.total), f"{throughput.per_second:g}"),))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _running(worker: WorkerStats) -> str:
    names = Counter(task.task_name or "?" for task in worker.running)
    return ", ".join(name if count == 1 else f"{name} x{count}" for name, count in names.most_common()) or "-"


def worker_section(workers: Sequence[WorkerStats], clock: float) -> Section:
    """The live workers and the tasks each one runs (by name, from its last heartbeat)."""
    rows = tuple(
        (w.worker_id, w.host, str(w.pid), str(w.concurrency), _duration(clock - w.started_at),
         f"{w.last_seen_seconds:.1f}s", str(len(w.running)), _running(w))
        for w in workers
    )
    columns = ("worker_id", "host", "pid", "concurrency", "up", "seen_ago", "running", "tasks")
    return Section("workers", columns, rows, "no live workers")


def overview_sections(overview: Overview) -> list[Section]:
    """Every section of ``qtasks top``."""
    return [queue_section(overview.queues), status_section(overview.statuses), throughput_section(overview.throughput),
            worker_section(overview.workers, overview.taken_at)]


def _cell(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value) or "-"
    return value if isinstance(value, str) else to_json(value)


def field_sections(value: Any, title: str = "") -> list[Section]:
    """A dict as a field/value table (titled by its ``name``); a list as one table per item."""
    if isinstance(value, list):
        return [section for item in value for section in field_sections(item)]
    if not isinstance(value, dict):
        return [Section(title, ("value",), ((_cell(value),),))]
    rows = tuple((str(key), _cell(item)) for key, item in value.items())
    return [Section(str(value.get("name", title)), ("field", "value"), rows)]


def sections_for(target: str, value: Any) -> list[Section]:
    """The sections that show what the inspector's ``target`` returned."""
    if target == "overview":
        return overview_sections(value)
    drawn = {"queues": queue_section, "statuses": status_section, "throughput": throughput_section}.get(target)
    if drawn is not None:
        return [drawn(value)]
    if target == "workers":
        return [worker_section(value, time.time())]
    return field_sections(value, target)


def header_line(overview: Overview, note: str = "") -> str:
    """``app on URL at TIME`` (the URL without its password), then ``note``."""
    return f"app {overview.app!r} on {overview.broker} at {iso_time(overview.taken_at)}{note}"


def plain_text(sections: Sequence[Section], header: str = "") -> str:
    """Each section as its title, then aligned columns (or its ``empty`` text), a blank line apart."""
    blocks = [header] if header else []
    for section in sections:
        if not section.rows:
            blocks.append(f"{section.title}: {section.empty}" if section.title else section.empty)
            continue
        table = plain_table(section.columns, section.rows)
        blocks.append(f"{section.title}\n{table}" if section.title else table)
    return "\n\n".join(blocks)


def rich_view(sections: Sequence[Section], header: str = "") -> Any:
    """The sections as rich tables, in one renderable."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(header, style="bold")] if header else []
    for section in sections:
        if not section.rows:
            parts.append(Text(f"{section.title}: {section.empty}" if section.title else section.empty))
            continue
        table = Table(title=section.title or None, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False)
        for column in section.columns:
            table.add_column(column, overflow="fold")
        for row in section.rows:
            table.add_row(*row)
        parts.append(table)
    spaced = [item for part in parts for item in (part, Text(""))]  # a blank line after each part, as in plain text
    return Group(*spaced[:-1])


def show(sections: Sequence[Section], header: str = "") -> None:
    """Print the sections: rich tables on a terminal, plain text otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_view(sections, header))
    else:
        print(plain_text(sections, header))
