"""The examples run as the README says, and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_quickstart_runs_with_no_server() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == ["queued: add new", "add(2, 3) -> success 5", "word_count -> 6", "progress -> [0, 10, 20]"]
    assert lines[4].startswith("unknown task -> error: unknown task 'no_such_task'")
