"""Original-style plugins (``trigger(name, **kwargs)``) registered through ``add_plugin``."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from qtasks.asyncio import QueueTasks
from qtasks.errors import PluginError, TaskPluginTriggerError
from qtasks.hookspecs import hookimpl
from qtasks.kernel.legacy import LEGACY_TRIGGERS, LegacyAdapter, LegacyTrigger, legacy_selection
from qtasks.kernel.legacy_convert import decision_from
from qtasks.kernel.model import Decision, ExecutionCall, TaskCall
from qtasks.kernel.worker import Worker
from qtasks.stats import AsyncStats

DOC = Path(__file__).resolve().parents[1] / "docs" / "legacy_triggers.md"
ALL_NAMES = sorted(LEGACY_TRIGGERS)


class Recorder:
    """A sync original-style plugin: records every call, answers from ``answers`` by name."""

    def __init__(self, name: str = "Recorder", answers: dict[str, Any] | None = None) -> None:
        self.name = name
        self.answers = answers or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def trigger(self, name: str, **kwargs: Any) -> dict[str, Any] | None:
        """Record the call and answer."""
        self.calls.append((name, kwargs))
        answer = self.answers.get(name)
        return answer(**kwargs) if callable(answer) else answer

    @property
    def counts(self) -> Counter[str]:
        """How often each trigger name was called."""
        return Counter(name for name, _ in self.calls)

    def kwargs_of(self, name: str) -> dict[str, Any]:
        """The kwargs of the last call of ``name``."""
        return [kwargs for called, kwargs in self.calls if called == name][-1]


class AsyncRecorder(Recorder):
    """The same plugin with an ``async def trigger``."""

    async def trigger(self, name: str, **kwargs: Any) -> dict[str, Any] | None:  # type: ignore[override]
        """Record the call and answer, after a checkpoint."""
        await anyio.sleep(0)
        return super().trigger(name, **kwargs)


@pytest.fixture(autouse=True)
def _no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the builtins and the plugins under test: installed entry points stay out."""
    monkeypatch.setenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "1")


def make_app(name: str = "legacy") -> QueueTasks:
    """A fresh app on the memory broker."""
    return QueueTasks(name=name, broker_url="memory://")


@asynccontextmanager
async def serving(app: QueueTasks) -> AsyncIterator[QueueTasks]:
    """Run a worker for ``app`` for the duration of the block, then stop it."""
    async with anyio.create_task_group() as group:
        group.start_soon(app.serve, None, False)
        try:
            with anyio.fail_after(5):
                while app.worker is None:
                    await anyio.sleep(0.005)
            yield app
        finally:
            with anyio.fail_after(10):
                await app.stop()


# -- selection and registration ----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_original_name_is_accepted_and_mapped(name: str) -> None:
    app = make_app()
    entry = LEGACY_TRIGGERS[name]
    assert entry.hook in app.pm.specs
    if entry.component is not None:
        assert entry.component in app.pm.specs[entry.hook].fired_by
    else:
        assert "app" in app.pm.specs[entry.hook].fired_by
    label = app.add_plugin(Recorder(), [name], component=entry.component)
    registered = app.pm.get_plugin(label)
    assert isinstance(registered, LegacyAdapter)
    assert app.pm.hooks_of(registered) == (entry.hook.removeprefix("qtasks_"),)
    assert app.add_plugin(Recorder(), [name], name=f"any-{name}") == f"any-{name}"


def test_the_table_covers_the_56_names_once() -> None:
    assert len(LEGACY_TRIGGERS) == 56
    assert all(isinstance(e, LegacyTrigger) and e.name == n for n, e in LEGACY_TRIGGERS.items())
    assert {e.component for e in LEGACY_TRIGGERS.values()} == {None, "worker", "broker", "storage", "global_config"}
    for entry in LEGACY_TRIGGERS.values():
        prefix = entry.name.split("_")[0]
        expected = {"qtasks": None, "starter": None, "stats": None, "task": "worker", "global": "global_config"}.get(prefix, prefix)
        assert entry.component == expected, entry.name


def test_spec_signature_is_what_pluggy_sees() -> None:
    app = make_app()
    app.add_plugin(Recorder(), ["task_executor_args_replace", "worker_run_task_before"], component="worker")
    (impl,) = [i for i in app.pm.hook.qtasks_task_resolve_args.get_hookimpls() if isinstance(i.plugin, LegacyAdapter)]
    assert impl.argnames == ("worker", "call", "stack")
    assert inspect.iscoroutinefunction(impl.function)
    assert list(inspect.signature(impl.function).parameters) == ["worker", "call", "stack"]


def test_globals_for_a_component_take_only_its_names() -> None:
    app = make_app()
    label = app.add_plugin(Recorder(), None, component="worker")
    adapter = app.pm.get_plugin(label)
    worker_names = {n for n, e in LEGACY_TRIGGERS.items() if e.component == "worker"}
    assert set(adapter.trigger_names) == worker_names
    assert len(worker_names) == 18
    assert all(n.startswith(("worker_", "task_executor_")) for n in adapter.trigger_names)
    assert "qtasks_task_prepare" not in {c.name for c in app.pm.get_hookcallers(adapter)}
    everything = app.pm.get_plugin(app.add_plugin(Recorder(), name="all"))
    assert len(everything.trigger_names) == 56
    assert {e.name for e in legacy_selection(None, "app")} == {n for n, e in LEGACY_TRIGGERS.items() if e.component is None}


def test_unknown_name_and_wrong_component_are_errors() -> None:
    app = make_app()
    with pytest.raises(PluginError, match=r"unknown trigger name 'worker_strat' \(did you mean 'worker_start'") as info:
        app.add_plugin(Recorder(), ["worker_strat"])
    assert "valid names: " in str(info.value)
    with pytest.raises(PluginError, match="broker_start is not fired by component 'worker'") as info:
        app.add_plugin(Recorder(), ["broker_start"], component="worker")
    assert "worker_start" in str(info.value) and "broker_stop" not in str(info.value)
    with pytest.raises(PluginError, match="not fired by component 'storage'"):
        app.add_plugin(Recorder(), ["qtasks_add_task_before_broker"], component="storage")
    with pytest.raises(PluginError, match="no @hookimpl methods and no trigger"):
        app.add_plugin(object())
    assert not any(isinstance(p, LegacyAdapter) for p in app.pm.get_plugins())


def test_listing_shows_the_original_object() -> None:
    app = make_app()
    label = app.add_plugin(Recorder(name="old"), ["worker_start"], component="worker")
    (row,) = [r for r in app.pm.plugin_info() if r.name == label]
    assert label == "worker:old"
    assert row.origin == "add_plugin (legacy)" and row.component == "worker"
    assert row.source.endswith("Recorder") and row.hooks == ("startup",)
    app.remove_plugin(label)
    assert not app.pm.has_plugin(label)


# -- the worker path ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("plugin_cls", [Recorder, AsyncRecorder])
async def test_args_replace_sync_and_async(plugin_cls: type[Recorder]) -> None:
    app = make_app()
    plugin = plugin_cls(answers={"task_executor_args_replace": lambda **kw: {"args": [10, kw["args"][1]], "kw": {"c": 5}}})
    app.add_plugin(plugin, ["task_executor_args_replace"], component="worker")

    @app.task
    async def add(a: int, b: int, c: int = 0) -> int:
        return a + b + c

    async with serving(app):
        task = await add.add_task(1, 2, timeout=5)
    assert task is not None and task.status == "success" and task.returning == 17
    seen = plugin.kwargs_of("task_executor_args_replace")
    assert seen["args"] == [1, 2] and seen["kw"] == {}
    assert [p.name for p in seen["args_info"]] == ["a", "b", "c"]
    assert seen["task_executor"] is not None and "plugin_cache" not in seen


@pytest.mark.anyio
async def test_prepare_keeps_what_the_answer_leaves_out() -> None:
    app = make_app()
    plugin = Recorder(answers={"qtasks_add_task_before_broker": {"priority": 7}})
    app.add_plugin(plugin, ["qtasks_add_task_before_broker"])

    @app.task
    async def add(a: int, b: int = 0) -> int:
        return a + b

    async with serving(app):
        task = await add.add_task(1, b=2, timeout=5)
        assert task is not None and (task.status, task.returning, task.args, dict(task.kwargs), task.priority) == ("success", 3, (1,), {"b": 2}, 7)
        seen = plugin.kwargs_of("qtasks_add_task_before_broker")
        assert (seen["qtasks"], seen["broker"], seen["task_name"], seen["args"], seen["kw"]) == (app, app.broker, "add", (1,), {"b": 2})
        plugin.answers["qtasks_add_task_before_broker"] = {"args": [40], "kw": {"b": 2}, "extra": {"tag": "x"}}
        task = await add.add_task(1, timeout=5)
    assert task is not None and task.returning == 42 and task.extra == {"tag": "x"} and task.priority == 0


@pytest.mark.anyio
async def test_result_replace_and_generator_results() -> None:
    app = make_app()
    plugin = Recorder(answers={
        "task_executor_after_execute_result_replace": lambda **kw: {"result": kw["result"] * 10} if isinstance(kw["result"], int) else None,
        "task_executor_run_task_gen": lambda **kw: {"results": [*kw["results"], "end"]},
    })
    app.add_plugin(plugin, ["task_executor_after_execute_result_replace", "task_executor_run_task_gen", "task_executor_run_task"], component="worker")

    @app.task
    async def three() -> int:
        return 3

    @app.task
    async def counting() -> AsyncIterator[int]:
        for i in range(2):
            yield i

    async with serving(app):
        task = await three.add_task(timeout=5)
        generated = await counting.add_task(timeout=5)
    assert task is not None and task.returning == 30
    assert generated is not None and generated.returning == [0, 1, "end"]
    assert plugin.counts["task_executor_run_task"] == 1 and plugin.counts["task_executor_run_task_gen"] == 1


@pytest.mark.anyio
async def test_trigger_error_decides_the_outcome() -> None:
    app = make_app()
    plugin = Recorder(answers={"task_executor_run_task_trigger_error": lambda **kw: {"result": f"handled {kw['e'].kwargs['code']}"} if kw["e"].kwargs else None})
    app.add_plugin(plugin, ["task_executor_run_task_trigger_error"], component="worker")

    @app.task
    async def fails(code: int | None) -> None:
        if code is None:
            raise TaskPluginTriggerError("no code")
        raise TaskPluginTriggerError("asks the plugins", code=code)

    @app.task
    async def plain() -> None:
        raise ValueError("not for the plugin")

    async with serving(app):
        handled = await fails.add_task(4, timeout=5)
        unhandled = await fails.add_task(None, timeout=5)
        other = await plain.add_task(timeout=5)
    assert handled is not None and (handled.status, handled.returning) == ("success", "handled 4")
    assert unhandled is not None and unhandled.status == "error" and "no code" in (unhandled.traceback or "")
    assert other is not None and other.status == "error"
    assert plugin.counts["task_executor_run_task_trigger_error"] == 2
    assert plugin.kwargs_of("task_executor_run_task_trigger_error")["task_func"].name == "fails"


@pytest.mark.anyio
async def test_error_retry_decides_retries_and_rescues() -> None:
    app = make_app()
    attempts: list[int] = []

    def answer(**kw: Any) -> dict[str, Any]:
        if "rescue" in kw["trace"]:
            return {"result": "rescued"}
        return {"model": {"status": "retry", "retry": 1}}

    plugin = Recorder(answers={"worker_task_error_retry": answer})
    app.add_plugin(plugin, ["worker_task_error_retry"], component="worker")

    @app.task(retry=1)
    async def flaky() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise RuntimeError("try again")
        return "third time"

    @app.task(retry=1)
    async def doomed() -> None:
        raise RuntimeError("rescue me")

    @app.task
    async def no_retry() -> None:
        raise RuntimeError("rescue me too")

    async with serving(app):
        task = await flaky.add_task(timeout=5)
        rescued = await doomed.add_task(timeout=5)
        failed = await no_retry.add_task(timeout=5)
    # the builtin retries would stop after one retry: the third attempt is the legacy plugin's decision
    assert attempts == [1, 2, 3]
    assert task is not None and (task.status, task.returning) == ("success", "third time")
    assert rescued is not None and (rescued.status, rescued.returning) == ("success", "rescued")
    assert failed is not None and failed.status == "error"
    assert plugin.counts["worker_task_error_retry"] == 3
    seen = plugin.kwargs_of("worker_task_error_retry")
    assert seen["broker"] is app.broker and seen["task_func"].name == "doomed" and seen["task_broker"].task_name == "doomed"


def test_decisions_from_original_answers() -> None:
    assert decision_from({"result": None}) == Decision(action="succeed", result=None)
    assert decision_from({"retry": 2, "delay": 1.5}) == Decision(action="retry", delay=1.5)
    assert decision_from({"model": {"status": "retry", "traceback": "tb"}}) == Decision(action="retry", reason="tb")
    assert decision_from({"model": {"status": "cancel", "cancel_reason": "stop"}}) == Decision(action="cancel", reason="stop")
    assert decision_from({"model": {"status": "error", "retry": 0}}) is None
    assert decision_from({"retry": 0}) is None
    assert decision_from({}) is None


@pytest.mark.anyio
async def test_scope_before_and_after_execute() -> None:
    app = make_app()
    order: list[str] = []
    plugin = Recorder(answers={
        "task_executor_before_execute": lambda **kw: order.append("before"),
        "task_executor_middlewares_execute": lambda **kw: order.append(f"middlewares {kw['middlewares_before']}"),
        "task_executor_after_execute": lambda **kw: order.append("after"),
    })
    app.add_plugin(plugin, ["task_executor_before_execute", "task_executor_after_execute", "task_executor_middlewares_execute"], component="worker")

    @app.task
    async def work(fail: bool) -> None:
        order.append("run")
        if fail:
            raise ValueError("boom")

    async with serving(app):
        await work.add_task(False, timeout=5)
        await work.add_task(True, timeout=5)
    assert order == ["middlewares []", "before", "run", "after", "middlewares []", "before", "run"]


@pytest.mark.anyio
async def test_records_claims_and_status_writes() -> None:
    app = make_app()
    plugin = Recorder(answers={
        "broker_add_before": {"model": {"origin": "legacy"}},
        "worker_add": lambda **kw: {"name": "other"} if kw["task_name"] == "first" else None,
        "broker_remove_finished_task": lambda **kw: {"model": {"returning": f"{kw['model'].returning}!"}},
        "storage_update": lambda **kw: {"kw": {**kw["kw"], "cancel_reason": "noted"}} if kw["kw"]["status"] == "success" else None,
        "qtasks_get": lambda **kw: {"task": {"traceback": "seen by qtasks_get"}},
    })
    app.add_plugin(plugin, ["broker_add_before", "worker_add", "broker_remove_finished_task", "storage_update", "qtasks_get", "worker_execute_before"])

    @app.task
    async def first() -> str:
        return "first"

    @app.task
    async def other() -> str:
        return "other"

    async with serving(app):
        new = await first.add_task()
        assert new is not None and new.status == "new" and new.extra == {"origin": "legacy"}
        task = await app.wait_result(new.uuid, 5)
        assert task is not None
        stored = await app.get(task.uuid)
    assert (task.status, task.task_name, task.returning) == ("success", "other", "other!")
    assert task.cancel_reason == "noted" and task.traceback == "seen by qtasks_get"
    assert stored is not None and stored.returning == "other!"
    assert plugin.kwargs_of("worker_execute_before")["model"].status == "process"
    assert plugin.counts["worker_execute_before"] == 1 and plugin.counts["broker_remove_finished_task"] == 1
    assert plugin.counts["storage_update"] == 2  # the process write and the final write


@pytest.mark.anyio
async def test_startup_and_shutdown_fire_once_per_original_component() -> None:
    app = make_app()
    plugin = AsyncRecorder()
    app.add_plugin(plugin)
    async with serving(app):
        await app.ping()
        await app.flush_all()
    once = [
        "starter_start", "broker_start", "broker_listen_start", "broker_running_older_tasks", "storage_start",
        "storage_delete_finished_tasks", "storage_running_older_tasks", "global_config_start",
        "global_config_set_status", "worker_start", "worker_stop", "global_config_stop", "storage_stop",
        "broker_stop", "starter_stop", "qtasks_stop", "qtasks_ping", "qtasks_flush_all", "broker_flush_all",
        "storage_flush_all",
    ]
    assert {name: plugin.counts[name] for name in once} == dict.fromkeys(once, 1)
    assert isinstance(plugin.kwargs_of("worker_start")["worker"], Worker)
    assert plugin.kwargs_of("broker_start")["broker"] is app.broker
    assert plugin.kwargs_of("qtasks_stop") == {"qtasks": app, "starter": None}
    started = [n for n, _ in plugin.calls if n in once]
    assert started.index("starter_start") < started.index("broker_start") < started.index("storage_start") < started.index("worker_start")
    assert started.index("worker_stop") < started.index("broker_stop") < started.index("qtasks_stop")


@pytest.mark.anyio
async def test_plugin_cache_is_per_plugin_and_per_app() -> None:
    def counting(**kw: Any) -> dict[str, Any]:
        cache = kw.get("plugin_cache", {"runs": 0})
        return {"plugin_cache": {"runs": cache["runs"] + 1}}

    first, second = Recorder("first", {"worker_execute_after": counting}), Recorder("second", {"worker_execute_after": counting})
    app = make_app()
    app.add_plugin(first, ["worker_execute_after"], component="worker")
    app.add_plugin(second, ["worker_execute_after", "worker_start"], component="worker")

    @app.task
    async def noop() -> None:
        return None

    async with serving(app):
        for _ in range(3):
            await noop.add_task(timeout=5)
        assert first.kwargs_of("worker_execute_after")["plugin_cache"] == {"runs": 2}
        await noop.add_task(timeout=5)
    assert "plugin_cache" not in first.calls[0][1]
    assert [kw.get("plugin_cache") for name, kw in first.calls] == [None, {"runs": 1}, {"runs": 2}, {"runs": 3}]
    assert "plugin_cache" not in second.kwargs_of("worker_start")
    assert second.kwargs_of("worker_execute_after")["plugin_cache"] == {"runs": 3}

    other_app = make_app("other")
    other_app.add_plugin(first, ["worker_execute_after"], component="worker")

    @other_app.task(name="noop")
    async def noop_again() -> None:
        return None

    async with serving(other_app):
        await noop_again.add_task(timeout=5)
    assert "plugin_cache" not in first.calls[-1][1]


@pytest.mark.anyio
async def test_a_non_dict_answer_is_a_plugin_error() -> None:
    app = make_app()
    app.add_plugin(Recorder(answers={"qtasks_add_task_before_broker": ["args"]}), ["qtasks_add_task_before_broker"])

    @app.task
    async def noop() -> None:
        return None

    with pytest.raises(PluginError, match=r"trigger\('qtasks_add_task_before_broker'\) returned list; return a dict or None"):
        await noop.add_task()
    await app.stop()


@pytest.mark.anyio
async def test_global_config_and_stats_names() -> None:
    app = make_app()
    plugin = Recorder(answers={
        "global_config_set": lambda **kw: {"value": kw["value"].upper(), "name": "renamed"},
        "global_config_get": lambda **kw: {"get": f"<{kw['get']}>"},
        "global_config_get_match": lambda **kw: {"get": {"matched": sorted(kw["get"])}},
    })
    app.add_plugin(plugin, ["global_config_set", "global_config_get", "global_config_get_all", "global_config_get_match"], component="global_config")
    app.add_plugin(plugin, ["stats_inspect"], name="stats")
    config = app.global_config
    await config.set("n", "k", "v")
    assert plugin.kwargs_of("global_config_set")["name_"] == "n"
    assert plugin.kwargs_of("global_config_set")["global_config"] is not None
    assert await config.get("k", "renamed") == "<V>"
    assert await config.get_all("renamed") == {"k": "V"}
    assert await config.get_match("ren*") == {"matched": ["renamed"]}
    assert [n for n, _ in plugin.calls] == ["global_config_set", "global_config_get", "global_config_get_all", "global_config_get_match"]
    stats = AsyncStats(app)
    await stats.inspect()
    assert plugin.kwargs_of("stats_inspect") == {"stats": stats}
    await app.stop()


# -- new-style objects given original names -------------------------------------------------------


@pytest.mark.anyio
async def test_new_style_object_with_original_names() -> None:
    class Doubler:
        @hookimpl
        def qtasks_task_resolve_args(self, worker: Any, call: ExecutionCall) -> ExecutionCall:
            return attrs.evolve(call, args=tuple(2 * a for a in call.args))

        @hookimpl
        def qtasks_task_prepare(self, app: Any, call: TaskCall) -> None:
            raise AssertionError("not selected")

    app = make_app()
    label = app.add_plugin(Doubler(), ["task_executor_args_replace", "worker_run_task_before"], component="worker")
    assert app.pm.hooks_of(app.pm.get_plugin(label)) == ("task_resolve_args",)
    with pytest.raises(PluginError, match="qtasks_add_task_before_broker is not fired by component 'worker'"):
        app.add_plugin(Doubler(), ["qtasks_add_task_before_broker"], component="worker", name="again")
    with pytest.raises(PluginError, match="does not implement qtasks_task_result"):
        app.add_plugin(Doubler(), ["task_executor_run_task"], name="third")
    with pytest.raises(PluginError, match="broker_start is not fired by component 'worker'"):
        app.add_plugin(Doubler(), ["broker_start"], component="worker", name="fourth")

    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    async with serving(app):
        task = await add.add_task(1, 2, timeout=5)
    assert task is not None and task.returning == 6


# -- documentation -----------------------------------------------------------------------------


def test_the_documentation_lists_every_name() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {m.group(1): m for m in re.finditer(r"^\| `(\w+)` \| (\S+) \| `(\w+)` \|", text, re.MULTILINE)}
    assert set(rows) == set(LEGACY_TRIGGERS)
    for name, entry in LEGACY_TRIGGERS.items():
        assert rows[name].group(2) == (entry.component or "app"), name
        assert rows[name].group(3) == entry.hook, name


def test_trigger_names_dash_registers_a_plugin_that_runs_itself() -> None:
    from qtasks import hookimpl

    class SelfRunning:
        @hookimpl
        def qtasks_configure(self, app: Any) -> None: ...

    class OriginalStyle:
        def trigger(self, name: str, **kwargs: Any) -> None: ...

    app = make_app()
    label = app.add_plugin(SelfRunning(), trigger_names=["-"])
    assert app.pm.hooks_of(app.pm.get_plugin(label)) == ("configure",)
    legacy = app.add_plugin(OriginalStyle(), trigger_names=["-"], name="original")
    assert app.pm.hooks_of(app.pm.get_plugin(legacy)) == ()
