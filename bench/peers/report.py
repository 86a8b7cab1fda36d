"""Peer benchmark: medians over runs, the results JSON, PNG bar charts and the docs/benchmarks.md section."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["DOC", "IMAGES", "PHASE_LABELS", "median_figures", "merge_json", "render", "summary_rows"]

REPO = Path(__file__).resolve().parent.parent.parent
DOC = REPO / "docs" / "benchmarks.md"
IMAGES = REPO / "docs" / "images"
START, END = "<!-- peers:start -->", "<!-- peers:end -->"
HEADING = "## Against the peers"
PHASE_LABELS = {"noop": "no-op throughput", "roundtrip": "round trip", "io": "I/O-bound (sleep 0.01 s)",
                "batch": "batch enqueue", "two_processes": "no-op, 2 worker processes"}


def median_figures(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per phase and figure, the median over the runs that produced it."""
    collected: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for phase, figures in run.items():
            for key, value in figures.items():
                collected.setdefault(phase, {}).setdefault(key, []).append(value)
    return {phase: {key: statistics.median(values) for key, values in figures.items()} for phase, figures in collected.items()}


def merge_json(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """Write ``fresh`` to ``path``, keeping the frameworks of an earlier file that this run left out."""
    data = {"frameworks": {}}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    data["meta"] = fresh["meta"]
    data.setdefault("frameworks", {}).update(fresh["frameworks"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return data


def _fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def summary_rows(data: dict[str, Any]) -> list[tuple[str, dict[str, float | None]]]:
    """One row per framework (and per QTasks extra): label and its median figures."""
    rows = []
    for name, entry in data["frameworks"].items():
        median = entry.get("median", {})
        version = (entry.get("versions") or {}).get(entry.get("package") or "", "")
        label = f"{name} {version}".strip()
        get = lambda phase, key: median.get(phase, {}).get(key)  # noqa: E731
        rows.append((label, {"tasks_per_s": get("noop", "tasks_per_s"), "enqueues_per_s": get("noop", "enqueues_per_s"),
                             "p50_ms": get("roundtrip", "p50_ms"), "p99_ms": get("roundtrip", "p99_ms"),
                             "io_tasks_per_s": get("io", "tasks_per_s"), "rss_mb": get("noop", "worker_peak_rss_mb")}))
        if "batch" in median:
            rows.append((f"{name}, batch enqueue", {"tasks_per_s": get("batch", "tasks_per_s"), "enqueues_per_s": get("batch", "enqueues_per_s")}))
        if "two_processes" in median:
            rows.append((f"{name}, 2 worker processes", {"tasks_per_s": get("two_processes", "tasks_per_s"),
                         "enqueues_per_s": get("two_processes", "enqueues_per_s"), "rss_mb": get("two_processes", "workers_total_rss_mb")}))
    return rows


def _charts(data: dict[str, Any], images: Path) -> list[tuple[str, str]]:
    """Draw the PNG bar charts; (title, file name) of each. Needs matplotlib (the ``bench`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary_rows(data)
    charts = [("No-op tasks/s, end to end (higher is better)", "peers_throughput.png", "tasks_per_s"),
              ("Producer enqueues/s (higher is better)", "peers_enqueue.png", "enqueues_per_s"),
              ("Round trip p50 ms (lower is better)", "peers_latency_p50.png", "p50_ms"),
              ("Round trip p99 ms (lower is better)", "peers_latency_p99.png", "p99_ms"),
              ("I/O-bound tasks/s, sleep(0.01), concurrency 100 (higher is better)", "peers_io.png", "io_tasks_per_s"),
              ("Worker peak RSS MB, no-op run (lower is better)", "peers_rss.png", "rss_mb")]
    images.mkdir(parents=True, exist_ok=True)
    drawn = []
    for title, file_name, key in charts:
        points = [(label, figures[key]) for label, figures in rows if figures.get(key) is not None]
        if not points:
            continue
        figure, axes = plt.subplots(figsize=(8, 0.45 * len(points) + 1.2))
        labels = [label for label, _ in points][::-1]
        values = [value for _, value in points][::-1]
        colours = ["#d62728" if label.startswith("qtasks ") or label.startswith("qtasks,") else "#1f77b4" for label in labels]
        bars = axes.barh(labels, values, color=colours)
        axes.bar_label(bars, labels=[_fmt(v, 1 if v < 100 else 0) for v in values], padding=3, fontsize=8)
        axes.set_title(title, fontsize=10)
        axes.margins(x=0.15)
        axes.tick_params(labelsize=8)
        figure.tight_layout()
        figure.savefig(images / file_name, dpi=100)
        plt.close(figure)
        drawn.append((title, file_name))
    return drawn


def _section(data: dict[str, Any], charts: list[tuple[str, str]]) -> str:
    meta = data["meta"]
    measured = [entry.get("measured") or meta for entry in data["frameworks"].values()]
    dates = sorted({m["date"] for m in measured})
    commands: dict[str, list[str]] = {}
    for name, entry in data["frameworks"].items():
        commands.setdefault((entry.get("measured") or meta)["command"], []).append(name)
    runs = sorted({m["runs"] for m in measured})
    lines = [f"### Latest figures ({dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''})", "",
             f"Machine: {meta['machine']}. Redis {meta['redis_version']}. Median of {' or '.join(map(str, runs))} "
             f"run{'s' if runs != [1] else ''} each; {meta['tasks']:,} no-op tasks, {meta['roundtrips']} round trips, "
             f"{meta['io_tasks']:,} I/O tasks.", "", "Commands:", ""]
    lines += [f"- `{command}`" + (f" ({', '.join(names)})" if len(commands) > 1 else "") for command, names in commands.items()]
    lines += ["",
             "| framework | no-op tasks/s | enqueues/s | round trip p50 ms | p99 ms | I/O tasks/s | worker peak RSS MB |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for label, f in summary_rows(data):
        lines.append(f"| {label} | {_fmt(f.get('tasks_per_s'))} | {_fmt(f.get('enqueues_per_s'))} | {_fmt(f.get('p50_ms'), 2)} | "
                     f"{_fmt(f.get('p99_ms'), 2)} | {_fmt(f.get('io_tasks_per_s'))} | {_fmt(f.get('rss_mb'), 1)} |")
    lines += ["", "`–`: not measured (the I/O test is for async frameworks only) or failed (see below). "
              "The RSS of the 2-process row is both workers' summed.", "", "Settings (each adapter's `SETTINGS`):", ""]
    for name, entry in data["frameworks"].items():
        versions = ", ".join(f"{k} {v}" for k, v in (entry.get("versions") or {}).items() if v)
        used = entry.get("concurrency", {})
        shown = f"noop {used.get('noop')}" + (f", sleep {used.get('sleep')}" if "io" in entry.get("median", {}) else "")
        lines.append(f"- **{name}** ({versions or 'not installed'}; worker --concurrency {shown}): {entry.get('settings', '')}")
    problems = [(name, entry) for name, entry in data["frameworks"].items() if entry.get("error") or entry.get("errors")]
    if problems:
        lines += ["", "Failures:", ""]
        for name, entry in problems:
            if entry.get("error"):
                lines.append(f"- **{name}**: {entry['error']}")
            for item in entry.get("errors", []):
                lines.append(f"- **{name}**, run {item['run']}, {PHASE_LABELS.get(item['phase'], item['phase'])}: {item['error']}")
    lines.append("")
    for title, file_name in charts:
        lines += [f"![{title}](images/{file_name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def render(data: dict[str, Any], doc: Path = DOC, images: Path = IMAGES) -> list[str]:
    """Draw the charts and replace the text between the peers markers in ``doc`` (adding the heading
    and the markers at the end when absent); the rest of the file is left as it is. Returns notes."""
    notes = []
    try:
        charts = _charts(data, images)
    except ImportError:
        charts = []
        notes.append("matplotlib is missing: no charts (pip install -e '.[bench]')")
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{_section(data, charts)}{END}{tail}")
    notes.append(f"rendered {doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc} and {len(charts)} charts")
    return notes
