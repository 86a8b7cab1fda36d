"""Two terminals, one queue, nothing to install: processes share the default SQLite file.

From the repository root (both terminals in the same directory, where ``qtasks.sqlite3`` lives)::

    qtasks -A examples.two_terminals:app run        # terminal 1: a worker, until Ctrl-C
    python examples/two_terminals.py 2 3             # terminal 2: queue add(2, 3), wait, print

The task waits in the file until a worker takes it, so terminal 2 can also go first; queued tasks
survive restarts of either process.
"""

from __future__ import annotations

import sys

from qtasks import QueueTasks

app = QueueTasks(name="two-terminals")  # no URL: qtasks.sqlite3 in the working directory


@app.task
def add(x: int, y: int) -> int:
    """Runs in the worker process."""
    return x + y


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python examples/two_terminals.py X Y", file=sys.stderr)
        return 2
    x, y = int(argv[0]), int(argv[1])
    record = add.add_task(x, y, timeout=60)  # blocks until a worker (in any process) ran it
    if record is None:
        print("no result within 60 s: is a worker running? (qtasks -A examples.two_terminals:app run)", file=sys.stderr)
        return 1
    print(f"{x} + {y} = {record.returning} (task {record.uuid}, {record.status})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
