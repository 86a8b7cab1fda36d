"""The ``logging`` plugin (rich on a terminal, plain lines otherwise, levels from the config) and ``QueueConfig``."""

from __future__ import annotations

import logging
import os
import pty
import re
import subprocess
import sys
from typing import Any

import anyio
import pytest

from qtasks import QueueConfig
from qtasks.asyncio import QueueTasks
from subprocesses import child_env, read_terminal

SCRIPT = """
import logging, sys
{before}
from qtasks.asyncio import QueueTasks
app = QueueTasks(name="logapp", broker_url="memory://"{extra})
app.log.debug("debug line")
app.log.info("info line")
app.log.warning("warning line")
logging.getLogger("qtasks.worker").warning("library line")
{after}
"""


def run_script(env: dict[str, str] | None = None, tty: bool = False, before: str = "", after: str = "", extra: str = "") -> str:
    """Run SCRIPT in a child process and return what it wrote to stderr (through a pty with ``tty``)."""
    code = SCRIPT.format(before=before, after=after, extra=extra)
    environment = {**child_env(), **(env or {})}
    environment.pop("NO_COLOR", None) if "NO_COLOR" not in (env or {}) else None
    if not tty:
        result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stderr
    leader, follower = pty.openpty()
    environment.setdefault("TERM", "xterm-256color")
    process = subprocess.Popen([sys.executable, "-c", code], env=environment, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    raw = read_terminal(leader, timeout=60, keep_ansi=True)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    return raw


def test_plain_lines_when_stderr_is_not_a_terminal() -> None:
    err = run_script()
    lines = err.splitlines()
    assert len(lines) == 3, err  # info and above, at the default level INFO
    assert re.fullmatch(r"\S+ \S+ \[logapp: INFO\] \(QueueTasks\) info line", lines[0]), lines[0]
    assert "[logapp: WARNING] (QueueTasks) warning line" in lines[1]
    assert "[qtasks.worker: WARNING] (qtasks.worker) library line" in lines[2]
    assert "\x1b[" not in err


def test_rich_output_on_a_terminal_and_plain_with_no_color() -> None:
    err = run_script(tty=True)
    assert "info line" in err and "warning line" in err and "library line" in err
    assert "\x1b[" in err  # colour codes: rich is writing
    assert "[logapp: INFO]" not in err  # rich shows the level in its own column
    plain = run_script(tty=True, env={"NO_COLOR": "1"})
    assert "[logapp: INFO] (QueueTasks) info line" in plain and "\x1b[" not in plain


def test_levels_from_the_environment_and_from_the_config_at_run_time() -> None:
    quiet = run_script(env={"QTASKS_LOGS_DEFAULT_LEVEL_SERVER": "warning"})
    assert "info line" not in quiet and "warning line" in quiet
    loud = run_script(env={"QTASKS_LOGS_DEFAULT_LEVEL_SERVER": "DEBUG"})
    assert "debug line" in loud
    changed = run_script(after="app.config.logs_default_level_server = logging.DEBUG\napp.log.debug('after the change')")
    assert "debug line" not in changed and "after the change" in changed
    in_code = run_script(env={"QTASKS_LOGS_DEFAULT_LEVEL_SERVER": "DEBUG"},
                         extra=", config=__import__('qtasks').QueueConfig(logs_default_level_server=logging.ERROR)")
    assert "warning line" not in in_code and "library line" not in in_code  # a value given in code wins


def test_logging_configured_by_the_user_is_left_alone() -> None:
    err = run_script(before="logging.basicConfig(format='ROOT %(name)s %(message)s', level=logging.INFO)")
    assert err.splitlines() == ["ROOT logapp info line", "ROOT logapp warning line", "ROOT qtasks.worker library line"]


def test_without_the_plugin_records_go_to_the_root_logger() -> None:
    err = run_script(extra=", disable_plugins=['logging']",
                     before="logging.basicConfig(format='ROOT %(levelname)s %(message)s', level=logging.WARNING)")
    assert err.splitlines() == ["ROOT WARNING warning line", "ROOT WARNING library line"]
    app = QueueTasks(name="no-logging", broker_url="memory://", disable_plugins=["logging"])
    assert not any(getattr(handler, "_qtasks_handler", False) for handler in app.log.logger.handlers)


# -- QueueConfig ---------------------------------------------------------------------------------


def test_environment_values_are_parsed_by_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTASKS_RESULT_STATUSES_END", "success, error")
    monkeypatch.setenv("QTASKS_MAX_TASKS_PROCESS", "4")
    monkeypatch.setenv("QTASKS_RUNNING_OLDER_TASKS", "yes")
    monkeypatch.setenv("QTASKS_TASK_LEASE", "12.5")
    monkeypatch.setenv("QTASKS_LOGS_DEFAULT_LEVEL_CLIENT", "error")
    config = QueueConfig(max_tasks_process=8)
    assert config.result_statuses_end == ["success", "error"]
    assert config.max_tasks_process == 8  # given in code: the environment does not override it
    assert (config.running_older_tasks, config.task_lease, config.logs_default_level_client) == (True, 12.5, logging.ERROR)
    monkeypatch.setenv("QTASKS_RESULT_STATUSES_END", '["success", "cancel"]')
    assert QueueConfig().result_statuses_end == ["success", "cancel"]


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("QTASKS_RUNNING_OLDER_TASKS", "maybe", "use one of 1/0, true/false"),
    ("QTASKS_MAX_TASKS_PROCESS", "ten", "expected an integer"),
    ("QTASKS_LOGS_DEFAULT_LEVEL_SERVER", "LOUD", "use a level name"),
    ("QTASKS_RESULT_STATUSES_END", "[oops", "not a JSON list"),
    ("QTASKS_TASK_LEASE", "0", "task_lease must be a number > 0"),
])
def test_bad_environment_values_name_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch, name: str, raw: str, message: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=re.escape(message)):
        QueueConfig()


def test_subscribe_sees_declared_and_dynamic_settings_and_every_component_shares_one_config() -> None:
    config = QueueConfig()
    seen: list[tuple[str, Any]] = []
    config.subscribe(lambda changed, key, value: seen.append((key, value)))
    config.task_default_priority = 3
    config.my_plugin_limit = 7  # not declared: kept as a dynamic field
    assert seen == [("task_default_priority", 3), ("my_plugin_limit", 7)]
    assert config.my_plugin_limit == 7 and not hasattr(config, "never_set")
    with pytest.raises(AttributeError, match="QueueConfig has no setting 'never_set'"):
        config.never_set  # noqa: B018
    config.task_lease = 7.0
    app = QueueTasks(name="shared-config", broker_url="memory://", config=config)
    assert app.config is config

    async def started_lease() -> float:
        await app.start()
        try:
            return app.broker.lease
        finally:
            await app.close()

    assert anyio.run(started_lease) == 7.0  # the broker reads the app's one config
