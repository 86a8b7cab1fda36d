"""The plugin manager: builtins by name, blocking, replacing, registration checks, entry points."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from qtasks import TaskCall, hookimpl
from qtasks.asyncio import QueueTasks
from qtasks.builtin_plugins import DEFAULT_PLUGINS
from qtasks.builtin_plugins.memory_broker import MemoryBroker
from qtasks.errors import ConfigurationError, PluginError
from qtasks.testing import running_worker

REQUIRED = {"serializer": "serializer", "sqlite_broker": "broker", "sqlite_storage": "storage", "sqlite_global_config": "global_config"}


def test_kernel_imports_no_builtin_plugin() -> None:
    kernel = Path(__file__).parents[1] / "qtasks" / "kernel"
    for path in kernel.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("qtasks.builtin_plugins") for n in names), f"{path.name} imports {names}"


def test_builtins_are_registered_by_short_name(app: QueueTasks) -> None:
    names = {name for name, _ in app.pm.list_name_plugin()}
    assert set(DEFAULT_PLUGINS) <= names
    rows = {row.name: row for row in app.pm.plugin_info()}
    assert rows["memory_broker"].origin == "builtin" and "make_broker" in rows["memory_broker"].hooks


@pytest.mark.anyio
@pytest.mark.parametrize("blocked", sorted(REQUIRED))
async def test_blocking_a_required_builtin_names_what_is_missing(blocked: str) -> None:
    app = QueueTasks(name="blocked", disable_plugins=[blocked])
    rows = {row.name: row for row in app.pm.plugin_info()}
    assert rows[blocked].blocked
    with pytest.raises(ConfigurationError, match=f"no {REQUIRED[blocked]}: '{blocked}' blocked and nothing implements qtasks_make_{REQUIRED[blocked]}"):
        await app.start()


@pytest.mark.anyio
@pytest.mark.parametrize("blocked", sorted(set(DEFAULT_PLUGINS) - set(REQUIRED) - {"executor"}))
async def test_app_runs_with_any_optional_builtin_blocked(blocked: str) -> None:
    app = QueueTasks(name="optional", disable_plugins=[blocked])

    @app.task
    async def ok() -> str:
        return "ok"

    async with running_worker(app):
        assert (await ok.add_task(timeout=5)).returning == "ok"


@pytest.mark.anyio
async def test_blocked_executor_fails_the_task_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTASKS_DISABLE_PLUGINS", "executor")
    app = QueueTasks(name="no-executor")

    @app.task
    async def ok() -> str:
        return "ok"

    async with running_worker(app):
        task = await ok.add_task(timeout=5)
    assert task.status == "error" and "the 'executor' plugin is blocked" in task.traceback


def test_unknown_disabled_name_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"cannot disable unknown plugin 'retrys' \(did you mean 'retries'\?\)"):
        QueueTasks(disable_plugins=["retrys"])


@pytest.mark.anyio
async def test_replacing_the_broker_with_a_plugin() -> None:
    class CountingBroker(MemoryBroker):
        enqueued = 0

        async def enqueue(self, envelopes: Any) -> None:
            CountingBroker.enqueued += len(envelopes)
            await super().enqueue(envelopes)

    class Replace:
        @hookimpl
        def qtasks_make_broker(self, app: Any, url: str) -> MemoryBroker:
            return CountingBroker()

    app = QueueTasks(name="replaced", plugins=[Replace()])

    @app.task
    async def ok() -> str:
        return "ok"

    async with running_worker(app):
        assert (await ok.add_task(timeout=5)).returning == "ok"
    assert isinstance(app.broker, CountingBroker) and CountingBroker.enqueued == 1


def test_registration_checks_name_the_fix(app: QueueTasks) -> None:
    class Typo:
        @hookimpl
        def qtasks_task_prepair(self, app: Any, call: Any) -> None:
            return None

    class AsyncFactory:
        @hookimpl
        async def qtasks_make_broker(self, app: Any, url: str) -> None:
            return None

    class Defaulted:
        @hookimpl
        def qtasks_task_prepare(self, app: Any, call: Any = None) -> None:
            return None

    class WrongArgument:
        @hookimpl
        def qtasks_task_prepare(self, app: Any, cal: Any) -> None:
            return None

    class Wrapper:
        @hookimpl(wrapper=True)
        def qtasks_task_prepare(self, app: Any, call: Any) -> Any:
            return (yield)

    with pytest.raises(PluginError, match=r"implements no qtasks hook \(did you mean 'qtasks_task_prepare'"):
        app.add_plugin(Typo())
    with pytest.raises(PluginError, match="is async but qtasks_make_broker is sync-only"):
        app.add_plugin(AsyncFactory())
    with pytest.raises(PluginError, match="parameter 'call' has a default"):
        app.add_plugin(Defaulted())
    with pytest.raises(Exception, match="cal"):
        app.add_plugin(WrongArgument())
    with pytest.raises(PluginError, match="implement qtasks_task_scope instead"):
        app.add_plugin(Wrapper())
    with pytest.raises(PluginError, match=r"register an instance \(Typo\(\)\)"):
        app.pm.register(Typo)


def test_add_plugin_names_components_and_trigger_names(app: QueueTasks) -> None:
    class Observer:
        @hookimpl
        def qtasks_task_received(self, worker: Any, task: Any) -> None:
            return None

        @hookimpl
        def qtasks_task_prepare(self, app: Any, call: TaskCall) -> None:
            return None

    name = app.add_plugin(Observer(), trigger_names=["task_received"], component="worker")
    assert name == "worker:Observer"
    assert app.pm.hooks_of(app.pm.get_plugin(name)) == ("task_received",)
    with pytest.raises(PluginError, match="is not fired by component 'worker'"):
        app.add_plugin(Observer(), trigger_names=["task_prepare"], component="worker", name="again")
    with pytest.raises(PluginError, match="unknown trigger name 'task_recieved'"):
        app.add_plugin(Observer(), trigger_names=["task_recieved"], name="third")
    with pytest.raises(ConfigurationError, match="unknown component 'starter'"):
        app.add_plugin(Observer(), component="starter")
    with pytest.raises(PluginError, match="already registered"):
        app.add_plugin(Observer(), trigger_names=["task_received"], component="worker")
    app.remove_plugin(name)
    assert not app.pm.has_plugin(name)


def _sample_installed() -> bool:
    return any(ep.name == "sample" for ep in importlib.metadata.entry_points(group="qtasks"))


@pytest.mark.anyio
async def test_entry_point_plugin_is_discovered_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _sample_installed(), "install the test distribution: pip install -e tests/sample_plugin_dist"
    monkeypatch.delenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD")
    app = QueueTasks(name="entry-points")
    rows = {row.name: row for row in app.pm.plugin_info()}
    assert rows["sample"].origin == "entry point (qtasks-sample-plugin 0.1.0)"
    assert rows["sample"].source == "qtasks_sample_plugin.SamplePlugin"
    task = await app.add_task("anything")
    assert task.extra == {"sample": True}
    app.task(sample_option=1)(lambda: None)

    blocked = QueueTasks(name="blocked-entry-point", disable_plugins=["sample"])
    assert not blocked.pm.has_plugin("sample") and blocked.pm.is_blocked("sample")
    assert (await blocked.add_task("anything")).extra == {}

    monkeypatch.setenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert not QueueTasks(name="no-autoload").pm.has_plugin("sample")


@pytest.mark.anyio
async def test_unserialisable_replacement_message_marks_the_record(app: QueueTasks) -> None:
    import attrs

    from qtasks.errors import SerializationError

    class Spoil:
        @hookimpl
        def qtasks_task_enqueue(self, app: Any, message: Any) -> Any:
            return attrs.evolve(message, args=(object(),))

    app.add_plugin(Spoil())
    recorded: list[Any] = []

    class Keep:
        @hookimpl
        def qtasks_task_store(self, app: Any, task: Any) -> None:
            recorded.append(task.uuid)

    app.add_plugin(Keep())
    with pytest.raises(SerializationError):
        await app.add_task("anything")
    assert await app.get(recorded[0]) is None  # nothing stored, nothing queued
    assert await app.broker.depth() == 0


def test_a_blocked_name_cannot_be_reused(app: QueueTasks) -> None:
    blocked = QueueTasks(name="blocked-name", disable_plugins=["logging"])

    class Named:
        name = "logging"

        @hookimpl
        def qtasks_task_received(self, worker: Any, task: Any) -> None:
            return None

    with pytest.raises(PluginError, match="plugin name 'logging' is blocked"):
        blocked.add_plugin(Named())


def test_autoload_flag_reads_false_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _sample_installed()
    monkeypatch.setenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert QueueTasks(name="autoload-on").pm.has_plugin("sample")
    monkeypatch.setenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "yes")
    assert not QueueTasks(name="autoload-off").pm.has_plugin("sample")


def test_internal_error_reporters_are_isolated(app: QueueTasks) -> None:
    seen: list[str] = []

    class Loud:
        @hookimpl
        def qtasks_internal_error(self, app: Any, error: BaseException, where: str) -> None:
            raise RuntimeError("reporter bug")

    class Quiet:
        @hookimpl
        def qtasks_internal_error(self, app: Any, error: BaseException, where: str) -> None:
            seen.append(where)

    app.add_plugin(Quiet())
    app.add_plugin(Loud())  # registered last: called first, and raises
    app._internal_error(ValueError("x"), "somewhere")
    assert seen == ["somewhere"]
