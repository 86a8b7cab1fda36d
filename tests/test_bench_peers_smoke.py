"""The peer benchmark harness (bench/peers/run.py) runs QTasks alone on a small load and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
URL = "redis://127.0.0.1:6379/13"
sys.path.insert(0, str(PEERS))
from report import END, START, render  # noqa: E402
from venvs import discover, read_adapter  # noqa: E402


def venvs_present() -> set[str]:
    folder = PEERS / ".venvs"
    return {entry.name for entry in folder.iterdir()} if folder.exists() else set()


@pytest.mark.slow
def test_qtasks_alone_on_50_tasks(tmp_path: Path) -> None:
    try:
        redis.Redis.from_url(URL).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for this test ({error}); .ci/run starts it")
    before = venvs_present()
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(PEERS / "run.py"), "--only", "qtasks", "--tasks", "50", "--roundtrips", "10",
                           "--io-tasks", "50", "--runs", "1", "--redis", URL, "--json", str(out)],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert list(data["frameworks"]) == ["qtasks"]
    entry = data["frameworks"]["qtasks"]
    assert entry["errors"] == [], entry["errors"]
    assert entry["python"] == sys.executable  # a "<repo>" adapter runs in this venv: no install
    median = entry["median"]
    assert median["noop"]["tasks_per_s"] > 0 and median["noop"]["enqueues_per_s"] > 0
    assert 0 < median["roundtrip"]["p50_ms"] <= median["roundtrip"]["p99_ms"]
    assert median["io"]["tasks_per_s"] > 0
    assert median["batch"]["enqueues_per_s"] > 0
    assert median["two_processes"]["workers_total_rss_mb"] > median["two_processes"]["worker_peak_rss_mb"] > 10
    assert data["meta"]["tasks"] == 50 and data["meta"]["runs"] == 1
    assert venvs_present() == before  # no other framework's venv was made


def test_adapters_declare_what_the_harness_reads() -> None:
    adapters = {adapter.name: adapter for adapter in discover()}
    assert adapters["qtasks"].requirements == ["<repo>"] and adapters["qtasks"].is_async
    assert adapters["qtasks"].extra_phases == ["batch", "two_processes"]
    assert adapters["qtasks_original"].requirements == ["qtasks==1.7.3"]
    assert all(adapter.settings for adapter in adapters.values())


def test_an_adapter_without_requirements_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "adapter_broken.py"
    path.write_text('"""No pins."""\nSETTINGS = "x"\n')
    with pytest.raises(RuntimeError, match="adapter_broken.py: needs a literal REQUIREMENTS"):
        read_adapter(path)


def test_render_replaces_only_the_marked_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkeep me\n")
    data = {"meta": {"date": "2026-01-01 00:00 UTC", "machine": "test box", "redis_version": "7", "command": "python bench/peers/run.py",
                     "runs": 1, "tasks": 50, "roundtrips": 10, "io_tasks": 50},
            "frameworks": {"qtasks": {"settings": "-c 10", "package": "qtasks", "versions": {"qtasks": "2.0"}, "concurrency": {"noop": 10},
                                      "median": {"noop": {"tasks_per_s": 1234.0, "enqueues_per_s": 2000.0, "worker_peak_rss_mb": 40.0}},
                                      "errors": [{"run": 1, "phase": "io", "error": "boom"}]},
                           "rq": {"error": "pip failed", "settings": "", "package": "rq"}}}
    render(data, doc, tmp_path / "images")
    first = doc.read_text()
    assert first.startswith("# Benchmarks\n\nkeep me\n\n## Against the peers\n")
    assert "| qtasks 2.0 | 1,234 | 2,000 |" in first and "**rq**: pip failed" in first and "I/O-bound (sleep 0.01 s): boom" in first
    data["frameworks"]["qtasks"]["median"]["noop"]["tasks_per_s"] = 999.0
    render(data, doc, tmp_path / "images")
    second = doc.read_text()
    assert second.count(START) == second.count(END) == 1 and "| qtasks 2.0 | 999 |" in second and "1,234" not in second
    assert second.split(START)[0] == first.split(START)[0]
