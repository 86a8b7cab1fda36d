"""Depends: a worker-scoped connection pool opened once, and a task-scoped transaction per run.

Run it with ``python examples/depends.py`` (memory://, no server). It prints when the pool and
each transaction open and close: the pool opens at the first task and closes when the worker
stops; each run gets its own transaction, committed on success and rolled back on error.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio

from qtasks import Depends
from qtasks.asyncio import QueueTasks

app = QueueTasks(name="depends-example", broker_url="memory://")


class Pool:
    """A fake connection pool: it counts the statements it runs."""

    def __init__(self) -> None:
        self.statements = 0

    def execute(self, sql: str) -> None:
        self.statements += 1


class Transaction:
    """A fake transaction: the rows it would write."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.rows: list[str] = []


@asynccontextmanager
async def open_pool() -> AsyncIterator[Pool]:
    """Worker scope: one pool for every task this worker runs, closed when it stops."""
    print("pool: open")
    pool = Pool()
    try:
        yield pool
    finally:
        print(f"pool: close after {pool.statements} statement(s)")


_numbers = itertools.count(1)


def transaction() -> Iterator[Transaction]:
    """Task scope (a sync generator, run in a worker thread): commit on success, roll back on error."""
    tx = Transaction(next(_numbers))
    print(f"transaction {tx.number}: begin")
    try:
        yield tx
    except Exception as error:  # the task's error is raised here; it still fails the task
        print(f"transaction {tx.number}: rollback ({type(error).__name__}: {error})")
        raise
    print(f"transaction {tx.number}: commit {tx.rows}")


@app.task
async def add_user(name: str, pool: Annotated[Pool, Depends(open_pool, scope="worker")], tx: Transaction = Depends(transaction)) -> int:
    """Insert a user; returns how many statements the shared pool has run."""
    if not name:
        raise ValueError("a user needs a name")
    pool.execute(f"INSERT INTO users VALUES ({name!r})")
    tx.rows.append(name)
    return pool.statements


async def main() -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 1, False)  # a worker in this process, no signal handling
        for name in ("ada", "", "grace"):
            record = await add_user.add_task(name, timeout=30)
            outcome = record.returning if record.status == "success" else record.traceback.strip().splitlines()[-1]
            print(f"add_user({name!r}) -> {record.status}: {outcome}")
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
