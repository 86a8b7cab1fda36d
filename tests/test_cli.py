"""The ``qtasks`` command line, run through its real entry points as subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from subprocesses import read_terminal

pytestmark = pytest.mark.slow

SCRIPT = shutil.which("qtasks", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).with_name("qtasks"))
TIMEOUT = 180.0  # generous: a loaded CI machine may take seconds just to import

INVENTORY = """
from qtasks import QueueTasks, hookimpl


class Audit:
    @hookimpl
    async def qtasks_startup(self, app, component):
        pass


class Tracer:
    name = "tracer"

    @hookimpl
    def qtasks_task_finished(self, worker, task):
        pass


app = QueueTasks("inventory", broker_url="memory://", plugins=[Tracer()], disable_plugins=["retries"])
app.add_plugin(Audit())
app.add_plugin(Audit(), component="worker", name="audit")
NUMBER = 3


def make_app():
    return app
"""

ORDER = """
from qtasks import QueueTasks, hookimpl


class Plain:
    def __init__(self, name):
        self.name = name

    @hookimpl
    async def qtasks_task_prepare(self, app, call):
        return None

    @hookimpl
    def qtasks_make_broker(self, app, url):
        return None

    @hookimpl
    async def qtasks_shutdown(self, app, component):
        pass


class Early(Plain):
    @hookimpl(tryfirst=True)
    async def qtasks_task_prepare(self, app, call):
        return None

    @hookimpl(tryfirst=True)
    def qtasks_make_broker(self, app, url):
        return None


class Late(Plain):
    @hookimpl(trylast=True)
    async def qtasks_task_prepare(self, app, call):
        return None

    @hookimpl(trylast=True)
    def qtasks_make_broker(self, app, url):
        return None


app = QueueTasks("order", broker_url="memory://")
for plugin in (Early("early"), Plain("first"), Late("late"), Plain("second")):
    app.add_plugin(plugin)
"""

RUN = """
import pathlib
import time

from qtasks import hookimpl
{import_line}

HERE = pathlib.Path(__file__).parent
app = QueueTasks("cli-run", broker_url="memory://")
KERNEL = getattr(app, "_kernel", app)


def note(line):
    with open(HERE / "events.log", "a") as log:
        log.write(line + "\\n")


@app.task
def write(name):
    (HERE / name).write_text("done")


@app.task
def slow():
    (HERE / "slow.started").write_text("")
    deadline = time.monotonic() + 120
    while not KERNEL.worker.stopping.is_set():  # in flight when the worker is asked to stop
        assert time.monotonic() < deadline, "the worker was never asked to stop"
        time.sleep(0.01)
    (HERE / "slow.saw-stop").write_text("")
    while not (HERE / "release").exists():  # the test creates it only after SIGTERM
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.01)
    note("slow ran to the end")


class Starter:
    @hookimpl
    async def qtasks_startup(self, app, component):
        if component == "worker":
            await app.add_task("write", "served.txt")
            await app.add_task("slow")

    @hookimpl
    def qtasks_task_finished(self, worker, task):
        note(f"finished {{task.task_name}} {{task.status}}")

    @hookimpl
    def qtasks_shutdown(self, app, component):
        note(f"shutdown {{component}}")


app.add_plugin(Starter(), component="worker")
"""


def child_env() -> dict[str, str]:
    """The environment of a CLI subprocess: no QTASKS_* settings leak in, no entry-point plugins."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTASKS_")}
    env["QTASKS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        env.pop(key, None)
    return env


def qtasks(cwd: Path, *args: str, script: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m qtasks ARGS`` (or the ``qtasks`` console script) in ``cwd``; stdin is not a terminal."""
    command = [SCRIPT] if script else [sys.executable, "-m", "qtasks"]
    return subprocess.run([*command, *args], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def write_module(directory: Path, name: str, source: str) -> str:
    """Write ``name.py`` into ``directory`` and return the module name."""
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Assert stderr is exactly one line and return it."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[Any] | None = None) -> None:
    """Poll ``condition`` until it holds, failing after TIMEOUT seconds or if ``process`` exits."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def import_module(path: Path) -> Any:
    """Import a module file under a unique name (the test process's view of the same app)."""
    spec = importlib.util.spec_from_file_location(f"cli_{path.stem}_{os.getpid()}_{time.monotonic_ns()}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A directory holding ``inventory.py``: an add_plugin plugin, a plugins= one, retries blocked."""
    write_module(tmp_path, "inventory", INVENTORY)
    return tmp_path


# -- help ----------------------------------------------------------------------------------------


def test_help_without_an_app_lists_run_and_points_at_plugins(tmp_path: Path) -> None:
    result = qtasks(tmp_path, "--help", script=True)
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "-A" in result.stdout and "plugins" in result.stdout
    run_help = qtasks(tmp_path, "run", "--help")
    assert run_help.returncode == 0 and "--concurrency" in run_help.stdout


def test_help_with_an_app_lists_the_plugin_commands(inventory: Path) -> None:
    result = qtasks(inventory, "-A", "inventory:app", "--help")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+plugins\s", result.stdout, re.M) and re.search(r"^\s+run\s", result.stdout, re.M)


# -- plugins list --------------------------------------------------------------------------------


def test_plugins_list_plain_hides_builtins_and_shows_origins_and_blocked(inventory: Path) -> None:
    result = qtasks(inventory, "-A", "inventory:app", "plugins", "list", script=True)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "origin", "component", "hooks", "source"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["Audit"].split()[1:4] == ["add_plugin", "-", "startup"]
    assert rows["worker:audit"].split()[1:3] == ["add_plugin", "worker"]
    assert rows["tracer"].split()[1:3] == ["plugins=", "-"]
    assert "(blocked)" in rows["retries"] and "builtin" in rows["retries"]
    assert not {"memory_broker", "executor", "plugins_cmd", "logging"} & set(rows)


def test_plugins_list_json(inventory: Path) -> None:
    result = qtasks(inventory, "-A", "inventory:app", "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"Audit", "worker:audit", "tracer", "retries"}
    assert rows["Audit"] == {"name": "Audit", "origin": "add_plugin", "component": None, "hooks": ["startup"],
                             "source": "inventory.Audit", "blocked": False}
    assert rows["worker:audit"]["component"] == "worker"
    assert rows["tracer"]["origin"] == "plugins=" and rows["tracer"]["hooks"] == ["task_finished"]
    assert rows["retries"]["blocked"] is True and rows["retries"]["origin"] == "builtin"
    assert "task_failed" in rows["retries"]["hooks"]


def test_plugins_list_all_shows_the_builtins(inventory: Path) -> None:
    plain = qtasks(inventory, "-A", "inventory:app", "plugins", "list", "--all")
    assert plain.returncode == 0, plain.stderr
    rows = {line.split()[0]: line.split() for line in plain.stdout.splitlines()[2:]}
    for builtin in ("serializer", "memory_broker", "memory_storage", "executor", "logging", "plugins_cmd"):
        assert rows[builtin][1] == "builtin", builtin
    assert {"Audit", "tracer", "retries"} <= set(rows)
    as_json = qtasks(inventory, "-A", "inventory:app", "plugins", "list", "--all", "--json")
    by_name = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert by_name["memory_broker"]["hooks"] == ["make_broker"] and by_name["memory_broker"]["blocked"] is False
    assert [row["name"] for row in json.loads(as_json.stdout) if row["blocked"]] == ["retries"]


TASK_FEATURES = ("retries", "time_limits", "context", "generators", "cancel", "depends", "state", "typed_args", "unique", "executor")


def test_plugins_list_shows_each_task_feature_as_a_removable_plugin(inventory: Path) -> None:
    listed = qtasks(inventory, "-A", "inventory:app", "plugins", "list", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    for feature in TASK_FEATURES:
        assert rows[feature]["origin"] == "builtin" and rows[feature]["hooks"], feature
        assert rows[feature]["source"] == f"qtasks.builtin_plugins.{feature}", feature
    (inventory / "bare.py").write_text("from qtasks.asyncio import QueueTasks\n"
                                        f"app = QueueTasks('bare', broker_url='memory://', disable_plugins={list(TASK_FEATURES)!r})\n")
    blocked = qtasks(inventory, "-A", "bare:app", "plugins", "list", "--json")
    assert blocked.returncode == 0, blocked.stderr
    assert {row["name"] for row in json.loads(blocked.stdout) if row["blocked"]} == set(TASK_FEATURES)


def test_app_factory_is_called(inventory: Path) -> None:
    result = qtasks(inventory, "-A", "inventory:make_app", "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert "Audit" in {row["name"] for row in json.loads(result.stdout)}


@pytest.mark.parametrize(
    "argv",
    [
        ["plugins", "list", "-A", "inventory:app", "--json"],
        ["plugins", "-A", "inventory:app", "list", "--json"],
        ["plugins", "list", "--json", "--app", "inventory:app"],
        ["plugins", "list", "--json", "--app=inventory:app"],
        ["-app", "inventory:app", "plugins", "list", "--json"],
        ["plugins", "list", "--json", "-app", "inventory:app"],
        ["-Ainventory:app", "plugins", "list", "--json"],
    ],
)
def test_the_app_option_goes_before_or_after_the_command(inventory: Path, argv: list[str]) -> None:
    result = qtasks(inventory, *argv)
    assert result.returncode == 0, result.stderr
    assert "Audit" in {row["name"] for row in json.loads(result.stdout)}


def test_hook_register_commands(tmp_path: Path) -> None:
    """A plugin's command: listed in --help, accepts -A after its name, its return is the status."""
    write_module(tmp_path, "greeter", """
        from qtasks.asyncio import QueueTasks
        from qtasks import hookimpl


        class Greeter:
            @hookimpl
            def qtasks_register_commands(self, commands, app):
                parser = commands.add_parser("greet", help="say hello")
                parser.add_argument("--code", type=int, default=0)
                parser.set_defaults(func=lambda args, kernel: print(f"hello from {kernel.name}") or args.code)


        app = QueueTasks("greeter", plugins=[Greeter()])
    """)
    assert re.search(r"^\s+greet\s+say hello$", qtasks(tmp_path, "-A", "greeter:app", "--help").stdout, re.M)
    result = qtasks(tmp_path, "greet", "--code", "3", "-A", "greeter:app")
    assert (result.returncode, result.stdout) == (3, "hello from greeter\n"), result.stderr


# -- plugins hooks -------------------------------------------------------------------------------


def test_plugins_hooks_prints_the_real_call_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(tmp_path, "order", ORDER)
    monkeypatch.setenv("QTASKS_DISABLE_PLUGIN_AUTOLOAD", "1")
    kernel = import_module(tmp_path / "order.py").app._kernel
    expected = {
        "qtasks_task_prepare": [entry[3] for entry in kernel.dispatcher.chain("qtasks_task_prepare")],
        "qtasks_shutdown": [entry[3] for entry in kernel.dispatcher.chain("qtasks_shutdown")],
        "qtasks_make_broker": [impl.plugin_name for impl in reversed(kernel.pm.hook.qtasks_make_broker.get_hookimpls())],
    }
    # later registered first, unless tryfirst / trylast; shutdown runs in reverse
    ours = {"early", "second", "first", "late"}
    assert [name for name in expected["qtasks_task_prepare"] if name in ours] == ["early", "second", "first", "late"]
    assert expected["qtasks_task_prepare"][-1] == "late"  # trylast, after the builtins too
    assert expected["qtasks_make_broker"] == ["early", "second", "first", "memory_broker", "redis_broker", "sqlite_broker", "late"]
    assert "logging" in expected["qtasks_shutdown"]

    result = qtasks(tmp_path, "-A", "order:app", "plugins", "hooks", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["hook"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(kernel.pm.specs)
    for hook, names in expected.items():
        assert [impl["plugin"] for impl in rows[hook]["implementations"]] == names, hook
    assert rows["qtasks_task_prepare"]["mode"] == "pipe" and rows["qtasks_make_broker"]["mode"] == "make"
    assert rows["qtasks_shutdown"]["reverse"] is True
    assert rows["qtasks_task_prepare"]["implementations"][0]["flags"] == ["tryfirst"]

    plain = qtasks(tmp_path, "plugins", "hooks", "-A", "order:app")
    assert plain.returncode == 0 and "\x1b" not in plain.stdout
    printed: dict[str, list[str]] = {}
    for line in plain.stdout.splitlines():
        if not line.startswith(" "):
            current = printed.setdefault(line.split()[0], [])
        elif match := re.match(r"\s+\d+\. (\S+)", line):
            current.append(match.group(1))
    for hook, names in expected.items():
        assert printed[hook] == names, hook
    assert re.search(r"^qtasks_task_prepare \(pipe\)$", plain.stdout, re.M)


def test_plugins_hooks_one_hook_by_short_name(inventory: Path) -> None:
    result = qtasks(inventory, "-A", "inventory:app", "plugins", "hooks", "startup")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["qtasks_startup (notify)", "  1. worker:audit", "  2. Audit", "  3. logging"]


def test_plugins_hooks_unknown_name_suggests_close_ones(inventory: Path) -> None:
    result = qtasks(inventory, "-A", "inventory:app", "plugins", "hooks", "qtasks_startp")
    assert result.returncode == 2
    assert "unknown hook 'qtasks_startp'" in one_error_line(result) and "'qtasks_startup'" in result.stderr


def on_terminal(cwd: Path, *args: str) -> str:
    """Run ``python -m qtasks ARGS`` with stdout on a pseudo-terminal; return what it drew, ANSI codes removed."""
    controller, terminal = os.openpty()
    env = {**child_env(), "COLUMNS": "200", "TERM": "xterm", "PYTHONIOENCODING": "utf-8"}
    process = subprocess.Popen([sys.executable, "-m", "qtasks", *args], cwd=cwd, env=env, stdout=terminal,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(terminal)
    text = read_terminal(controller, timeout=TIMEOUT)
    os.close(controller)
    assert process.wait(timeout=TIMEOUT) == 0, process.stderr.read() if process.stderr else ""
    return text


def test_plugins_commands_draw_rich_output_on_a_terminal(inventory: Path) -> None:
    for argv, expected in ((["plugins", "list", "--all"], "memory_broker"), (["plugins", "hooks", "startup"], "└── ")):
        output = on_terminal(inventory, "-A", "inventory:app", *argv)
        assert expected in output
        if argv[1] == "list":
            assert "─" in output and "Audit" in output and "retries (blocked)" in output


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["run"], 2, "no app given: pass -A module:attr"),
        (["plugins", "list"], 2, "no app given"),
        (["-A"], 2, "-A needs a value"),
        (["-A", "inventory", "run"], 2, "-A expects module:attr"),
        (["-A", "inventory:", "run"], 2, "-A expects module:attr"),
        (["-A", ":app", "run"], 2, "-A expects module:attr"),
        (["-A", "nosuch:app", "run"], 1, "cannot import module 'nosuch': no module named 'nosuch'"),
        (["-A", "inventory.py:app", "run"], 1, "give the module name, not a file name: 'inventory'"),
        (["-A", "broken:app", "run"], 1, "cannot import module 'broken': RuntimeError: no database at redis://bob:***@db/0"),
        (["-A", "needsdep:app", "task", "get", "x"], 1, "cannot import module 'needsdep': ModuleNotFoundError: No module named 'nosuch_dependency'"),
        (["-A", "typo:app", "workers"], 1, "cannot import module 'typo': SyntaxError: "),
        (["-A", "inventory:ap", "run"], 1, "has no attribute 'ap' (did you mean 'app'?); it defines inventory:app, inventory:make_app"),
        (["-A", "inventory:NUMBER", "run"], 1, "inventory:NUMBER is int, not a QueueTasks app"),
        (["-A", "inventory:Audit", "run"], 1, "inventory:Audit is the class Audit, not a QueueTasks app"),
        (["-A", "inventory:app", "nosuch"], 2, "invalid choice: 'nosuch'"),
        (["-A", "inventory:app", "run", "--concurrency", "0"], 2, "--concurrency: must be at least 1"),
        (["-A", "inventory:app", "run", "--concurrency", "many"], 2, "--concurrency: expected a whole number >= 1"),
    ],
)
def test_errors_are_one_clear_line(inventory: Path, argv: list[str], code: int, message: str) -> None:
    write_module(inventory, "broken", 'raise RuntimeError("no database at redis://bob:s3cret@db/0")')
    write_module(inventory, "needsdep", "import nosuch_dependency")
    write_module(inventory, "typo", "app = (")
    result = qtasks(inventory, *argv)
    assert result.returncode == code, result.stderr
    line = one_error_line(result)
    assert message in line and "error:" in line
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_debug_prints_the_traceback_before_the_error_line(inventory: Path) -> None:
    write_module(inventory, "broken", 'def connect():\n    raise RuntimeError("no database at redis://bob:s3cret@db/0")\nconnect()')
    plain = qtasks(inventory, "-A", "broken:app", "workers")
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    result = qtasks(inventory, "-A", "broken:app", "workers", "--debug")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Traceback (most recent call last):") and any("in connect" in line for line in lines)
    assert lines[-1] == "qtasks: error: cannot import module 'broken': RuntimeError: no database at redis://bob:***@db/0"
    assert "s3cret" not in result.stderr


def test_run_failure_never_shows_the_broker_password(tmp_path: Path) -> None:
    write_module(tmp_path, "remote", """
        from qtasks import QueueTasks
        app = QueueTasks("remote", broker_url="nosuch://bob:s3cret@db:1/0")
    """)
    result = qtasks(tmp_path, "-A", "remote:app", "run")
    assert result.returncode == 1
    assert "s3cret" not in result.stderr + result.stdout and "bob:***@db" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("qtasks: error: ConfigurationError: no broker")


# -- run -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("import_line", "script"),
    [("from qtasks import QueueTasks", False), ("from qtasks.asyncio import QueueTasks", True)],
    ids=["sync-app-python-m", "async-app-console-script"],
)
def test_run_serves_then_drains_on_sigterm(tmp_path: Path, import_line: str, script: bool) -> None:
    write_module(tmp_path, "runapp", RUN.format(import_line=import_line))
    command = [SCRIPT] if script else [sys.executable, "-m", "qtasks"]
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([*command, "-A", "runapp:app", "run", "--concurrency", "2"],
                                   cwd=tmp_path, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (tmp_path / "served.txt").exists(), "the first task ran", process)
        wait_for(lambda: (tmp_path / "slow.started").exists(), "the slow task started", process)
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: (tmp_path / "slow.saw-stop").exists(), "the running task saw the stop request", process)
        assert process.poll() is None, "the worker exited with a task still running"
        (tmp_path / "release").write_text("")
        assert process.wait(timeout=TIMEOUT) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    events = (tmp_path / "events.log").read_text().splitlines()
    assert "finished write success" in events
    assert events.index("slow ran to the end") < events.index("finished slow success") < events.index("shutdown worker")
    assert events[-1] == "shutdown app"
    output = log_path.read_text()
    assert "serving app 'cli-run' on memory://, 2 task(s) at once" in output and "worker stopped" in output
