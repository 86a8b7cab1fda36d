"""Retries: a task that fails twice, then succeeds; the caller's one wait covers every attempt.

Run it with ``python examples/retries.py`` (the SQLite default, no server). It prints each
attempt as the worker makes it, then the final record's status, attempts and kept errors.
"""

from __future__ import annotations

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="retries-example")
attempts: list[int] = []


@app.task(retry=3, retry_on_exc=[ConnectionError], retry_delay=0.2, retry_backoff=2.0, retry_max_delay=5.0)
async def fetch(url: str) -> str:
    """Fails with ConnectionError on its first two attempts (retried after about 0.2 s, then 0.4 s)."""
    attempts.append(len(attempts) + 1)
    print(f"attempt {len(attempts)}")
    if len(attempts) < 3:
        raise ConnectionError(f"{url} did not answer")
    return f"{url}: 200 OK"


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 2, False)  # a worker in this process, no signal handling
        record = await fetch.add_task("https://example.org", timeout=30)
        print("status:", record.status, "| returned:", record.returning, "| attempts:", record.attempts)
        for number, error in enumerate(record.errors, 1):
            print(f"error of attempt {number}: {error.strip().splitlines()[-1]}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
