"""State: tasks share key/value state through a parameter annotated with an AsyncState/SyncState class.

Run it with ``python examples/state.py`` (the SQLite default, no server: every worker on the same
file shares the state). Async tasks record the size of each page they crawl; a sync task reads
the same state to report; the script then clears it.
"""

from __future__ import annotations

import anyio

from qtasks.asyncio import QueueTasks
from qtasks.plugins import AsyncState, SyncState

app = QueueTasks(name="state-example")


class Pages(AsyncState):
    """The size of each crawled page, by URL: one state for the whole app."""


class PagesView(SyncState):
    """The same state for sync tasks: ``state_name`` picks it (the default is the class name)."""

    state_name = "Pages"


@app.task
async def crawl(url: str, pages: Pages) -> int:
    """Store the page's size under its URL; concurrent tasks each write their own key."""
    size = 100 * len(url)  # stands for downloading the page
    await pages.set(url, size)
    return size


@app.task
def report(pages: PagesView) -> dict[str, int]:
    """A sync task (it runs in a worker thread): its state's calls block until they are done."""
    sizes = pages.get()
    return {"pages": len(sizes), "bytes": sum(sizes.values())}


async def main() -> None:
    pages = Pages(app)  # the same state, outside any task
    await pages.clear()
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, 4, False)  # a worker in this process, no signal handling
        urls = ["https://example.org/", "https://example.org/about", "https://example.org/blog"]
        for task in await crawl.add_tasks([(url,) for url in urls]):
            await app.wait_result(task.uuid, 30)
        print("crawled:", dict(sorted((await pages.get()).items())))
        print("report:", (await report.add_task(timeout=30)).returning)
        await pages.clear()
        print("after clear:", await pages.get())
        await app.stop()


if __name__ == "__main__":
    anyio.run(main)
