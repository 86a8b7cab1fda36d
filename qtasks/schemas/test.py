"""TestConfig: which parts of an app a QTasks test case runs for real (``qtasks.tests``)."""

from __future__ import annotations

import attrs

__all__ = ["TestConfig"]


@attrs.define
class TestConfig:
    """What a :class:`~qtasks.tests.AsyncTestCase` / :class:`~qtasks.tests.SyncTestCase` runs.

    A component left out (False) is replaced, for the case, by its in-memory stand-in; a
    component kept (True) is the app's own. ``worker`` with ``broker`` serves a worker in the
    test; ``worker`` alone runs each task at once in ``add_task`` (eager mode); ``broker``
    alone queues the tasks and runs none. See docs/testing.md.

    Attributes:
        worker: Run the tasks (a worker, or eager mode without a broker).
        broker: Queue the tasks through the app's broker.
        storage: Keep the records in the app's storage.
        global_config: Use the app's global config.
        plugins: Keep the plugins that are not builtins (added with ``add_plugin``, ``plugins=``
            or an entry point); False sets them aside while the case runs.
    """

    __test__ = False  # not a pytest test class, despite its name

    worker: bool = False
    broker: bool = False
    storage: bool = False
    global_config: bool = False
    plugins: bool = False

    @classmethod
    def full(cls) -> TestConfig:
        """Everything for real: the app's components, its plugins and a worker."""
        return cls(worker=True, broker=True, storage=True, global_config=True, plugins=True)

    @classmethod
    def only_worker(cls, plugins: bool = False) -> TestConfig:
        """The worker alone: each task runs at once in ``add_task``, the rest in memory."""
        return cls(worker=True, plugins=plugins)

    @classmethod
    def only_broker(cls, plugins: bool = False) -> TestConfig:
        """The broker alone: tasks are queued and none runs; records in memory."""
        return cls(broker=True, plugins=plugins)

    @classmethod
    def full_broker(cls) -> TestConfig:
        """The app's broker, storage, global config and plugins, with no worker: tasks are queued only."""
        return cls(broker=True, storage=True, global_config=True, plugins=True)
