"""The Django integration: autodiscover_tasks, enqueue_on_commit, and the example project end to end."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import django
import httpx
import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings

from qtasks import ConfigurationError, QueueTasks, SyncRouter, Task, _state, hookimpl
from qtasks.asyncio import QueueTasks as AsyncQueueTasks
from qtasks.contrib.django import autodiscover_tasks, enqueue_on_commit
from qtasks.testing import running_worker

from background import background_process, copy_example, delete_app_keys, wait_until_listening
from redis_process import SHARED_URL, free_port
from subprocesses import child_env

pytestmark = pytest.mark.anyio


class EnqueueRecorder:
    """A plugin that records every task its app enqueues."""

    def __init__(self) -> None:
        self.enqueued: list[Task] = []

    @hookimpl
    async def qtasks_task_enqueued(self, app: Any, task: Task) -> None:
        self.enqueued.append(task)


@pytest.fixture(scope="module", autouse=True)
def django_in_this_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Django set up in this process: no apps, two SQLite databases with an ``orders`` table each."""
    if not settings.configured:
        folder = tmp_path_factory.mktemp("django")
        settings.configure(
            DATABASES={alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / f"{alias}.sqlite3")} for alias in ("default", "other")},
            INSTALLED_APPS=[], USE_TZ=True,
        )
        django.setup()
    for alias in ("default", "other"):
        with connections[alias].cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT)")


def _insert(item: str, using: str = "default") -> None:
    with connections[using].cursor() as cursor:
        cursor.execute("INSERT INTO orders (item) VALUES (%s)", [item])


def _stored(item: str) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM orders WHERE item = %s", [item])
        return cursor.fetchone()[0] == 1


# -- enqueue_on_commit ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_sync_app_enqueues_the_task_only_when_the_transaction_commits(kind: str) -> None:
    app = QueueTasks(name="django-sync", broker_url="memory://")
    recorder = EnqueueRecorder()
    app.add_plugin(recorder)
    if kind == "sync":
        @app.task
        def add(x: int, y: int) -> int:
            return x + y
    else:
        @app.task
        async def add(x: int, y: int) -> int:
            return x + y
    worker = threading.Thread(target=app.run_forever, kwargs={"concurrency": 2})
    worker.start()
    try:
        with transaction.atomic():
            _insert(f"sync-{kind}")
            pending = enqueue_on_commit(add, 2, 3)
            assert (pending.enqueued, pending.task, recorder.enqueued) == (False, None, [])
        assert pending.enqueued and pending.task is not None and pending.task.status == "new"
        assert [task.uuid for task in recorder.enqueued] == [pending.task.uuid]
        record = app.wait_result(pending.task.uuid, timeout=10)
    finally:
        app.stop()
        worker.join(10)
        app.close()
    assert record is not None and (record.task_name, record.args, record.status, record.returning) == ("add", (2, 3), "success", 5)
    assert _stored(f"sync-{kind}")


async def test_an_async_app_enqueues_from_a_thread_when_the_transaction_commits() -> None:
    """A Django view runs in a thread (``sync_to_async`` does the same): the commit enqueues
    through the async app's event loop."""
    app = AsyncQueueTasks(name="django-async", broker_url="memory://")

    @app.task
    async def add(x: int, y: int) -> int:
        return x + y

    def view() -> tuple[bool, Any]:
        with transaction.atomic():
            _insert("async")
            pending = enqueue_on_commit(add, 20, y=22)
            before_commit = pending.enqueued
        return before_commit, pending

    async with running_worker(app):
        before_commit, pending = await anyio.to_thread.run_sync(view)
        record = await app.wait_result(pending.task.uuid, timeout=10)
    assert before_commit is False and pending.enqueued
    assert record is not None and (record.args, record.kwargs, record.returning) == ((20,), {"y": 22}, 42)


@pytest.mark.parametrize("app_class", [QueueTasks, AsyncQueueTasks])
def test_a_rolled_back_transaction_enqueues_nothing(app_class: type) -> None:
    recorder = EnqueueRecorder()
    app = app_class(name="django-rollback", broker_url="memory://", plugins=[recorder])

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        _insert("rolled back")
        pending = enqueue_on_commit(add, 1, 2)
        1 / 0
    assert (pending.enqueued, pending.task, recorder.enqueued) == (False, None, [])
    assert not _stored("rolled back")


def test_a_rolled_back_savepoint_drops_its_task_and_the_outer_commit_enqueues_the_rest() -> None:
    recorder = EnqueueRecorder()
    app = QueueTasks(name="django-savepoint", broker_url="memory://", plugins=[recorder])

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with transaction.atomic():
        kept = enqueue_on_commit(add, 1, 1)
        with pytest.raises(ValueError), transaction.atomic():
            dropped = enqueue_on_commit(add, 2, 2)
            raise ValueError("the inner block fails")
    app.close()
    assert kept.enqueued and not dropped.enqueued
    assert [(task.args, task.status) for task in recorder.enqueued] == [((1, 1), "new")]


def test_outside_a_transaction_a_task_name_is_enqueued_at_once_with_its_options() -> None:
    recorder = EnqueueRecorder()
    app = QueueTasks(name="django-autocommit", broker_url="memory://", plugins=[recorder])
    QueueTasks(name="django-other", broker_url="memory://")  # now the last created app: app= wins

    @app.task(priority=7)
    def add(x: int, y: int) -> int:
        return x + y

    by_handle = enqueue_on_commit(add, 1, 2)
    by_name = enqueue_on_commit("add", 3, 4, app=app, priority=1, countdown=60)
    app.close()
    assert by_handle.task is not None and (by_handle.task.priority, by_handle.task.args) == (7, (1, 2))
    assert by_name.task is not None and (by_name.task.priority, by_name.task.args) == (1, (3, 4))
    assert len(recorder.enqueued) == 2


def test_using_chooses_the_database_whose_transaction_decides() -> None:
    recorder = EnqueueRecorder()
    app = QueueTasks(name="django-using", broker_url="memory://", plugins=[recorder])
    with transaction.atomic(using="other"):
        _insert("other", using="other")
        on_other = enqueue_on_commit("job", using="other", app=app)
        with transaction.atomic():  # "default" commits first, but only "other" decides
            on_default = enqueue_on_commit("job", app=app)
        assert on_default.enqueued and not on_other.enqueued
    app.close()
    assert on_other.enqueued and len(recorder.enqueued) == 2


def test_a_routers_task_enqueues_through_the_app_that_includes_it_and_fails_early_without_one() -> None:
    router = SyncRouter()

    @router.task(priority=3)
    def ship(order: int) -> str:
        return f"shipped {order}"

    with pytest.raises(ConfigurationError, match=r"task 'ship' .* is in no app yet: include the router: app.include_router\(router\)"):
        enqueue_on_commit(ship, 1)
    recorder = EnqueueRecorder()
    app = QueueTasks(name="django-router", broker_url="memory://", plugins=[recorder])
    app.include_router(router)
    with transaction.atomic():
        pending = enqueue_on_commit(ship, 2)
    app.close()
    assert pending.task is not None and (pending.task.task_name, pending.task.args, pending.task.priority) == ("ship", (2,), 3)
    assert [task.uuid for task in recorder.enqueued] == [pending.task.uuid]


def test_errors_are_raised_when_enqueue_on_commit_is_called_not_after_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    app = QueueTasks(name="django-errors", broker_url="memory://")
    with pytest.raises(TypeError, match=r"enqueue_on_commit expects a task \(what @app.task returns\) or a task name, got 42"):
        enqueue_on_commit(42)
    with transaction.atomic(), pytest.raises(TypeError, match="add_task\\('job'\\): priority must be an int"):
        enqueue_on_commit("job", app=app, priority="high")
    monkeypatch.setattr(_state, "app_main", None)
    with pytest.raises(ConfigurationError, match=r"enqueue_on_commit\('job'\): no QTasks app: create a QueueTasks first or pass app=\.\.\."):
        enqueue_on_commit("job")


# -- autodiscover_tasks ---------------------------------------------------------------------------


def _write_apps(folder: Path, tag: str) -> None:
    """Write Django apps ``<tag>_alpha`` (a sync app's task), ``<tag>_beta`` (no tasks module),
    ``<tag>_broken`` (its tasks module imports a missing dependency) and ``<tag>_gamma`` (an
    ``AppConfig``, an async app's task and a ``jobs`` module), plus ``<tag>_site`` with the apps."""
    files = {
        f"{tag}_site.py": "from qtasks import QueueTasks\nfrom qtasks.asyncio import QueueTasks as AsyncQueueTasks\n"
                          "sync_app = QueueTasks(name='site-sync', broker_url='memory://')\n"
                          "async_app = AsyncQueueTasks(name='site-async', broker_url='memory://')\n",
        f"{tag}_alpha/__init__.py": "",
        f"{tag}_alpha/tasks.py": f"from {tag}_site import sync_app\n\n@sync_app.task\ndef alpha_job() -> str:\n    return 'alpha'\n",
        f"{tag}_beta/__init__.py": "",
        f"{tag}_broken/__init__.py": "",
        f"{tag}_broken/tasks.py": "import qtasks_not_installed_dependency\n",
        f"{tag}_gamma/__init__.py": "",
        f"{tag}_gamma/apps.py": f"from django.apps import AppConfig\n\nclass GammaConfig(AppConfig):\n    name = '{tag}_gamma'\n",
        f"{tag}_gamma/tasks.py": f"from {tag}_site import async_app\n\n@async_app.task\nasync def gamma_job() -> str:\n    return 'gamma'\n",
        f"{tag}_gamma/jobs.py": f"from {tag}_site import sync_app\n\n@sync_app.task\ndef gamma_cron() -> str:\n    return 'cron'\n",
    }
    for name, source in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(source)


@pytest.fixture
def django_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The apps of ``_write_apps`` importable, under a fresh tag; their modules are forgotten after."""
    tag = f"dj{uuid4().hex[:8]}"
    _write_apps(tmp_path, tag)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tag
    for name in [name for name in sys.modules if name.startswith(tag)]:
        del sys.modules[name]


def test_autodiscover_imports_every_apps_tasks_and_logs_a_broken_one(django_apps: str, caplog: pytest.LogCaptureFixture) -> None:
    tag = django_apps
    installed = [f"{tag}_alpha", f"{tag}_beta", f"{tag}_broken", f"{tag}_gamma.apps.GammaConfig"]
    with override_settings(INSTALLED_APPS=installed), caplog.at_level(logging.ERROR, "qtasks.contrib.django"):
        site = importlib.import_module(f"{tag}_site")
        imported = autodiscover_tasks(site.sync_app)
        with_jobs = autodiscover_tasks(site.sync_app, ["jobs", "missing.module"])
    assert imported == [f"{tag}_alpha.tasks", f"{tag}_gamma.tasks"]
    assert with_jobs == [f"{tag}_gamma.jobs"]
    assert sorted(site.sync_app.tasks) == ["alpha_job", "gamma_cron"] and sorted(site.async_app.tasks) == ["gamma_job"]
    [failure] = caplog.records
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert failure.getMessage() == (
        f"autodiscover_tasks: cannot import '{tag}_broken.tasks': ModuleNotFoundError: No module named 'qtasks_not_installed_dependency'"
    )


def test_autodiscover_reads_installed_apps_from_the_settings_before_django_is_set_up(tmp_path: Path) -> None:
    """In a fresh process, before ``django.setup()``: the same modules, the same error line."""
    _write_apps(tmp_path, "fresh")
    script = textwrap.dedent("""
        import json, logging, sys
        from django.conf import settings
        from qtasks.contrib.django import autodiscover_tasks
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s", stream=sys.stderr)
        settings.configure(INSTALLED_APPS=["fresh_alpha", "fresh_beta", "fresh_broken", "fresh_gamma.apps.GammaConfig"])
        import fresh_site
        print(json.dumps(autodiscover_tasks(fresh_site.sync_app)))
        print(json.dumps(sorted(fresh_site.sync_app.tasks) + sorted(fresh_site.async_app.tasks)))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=child_env() | {"PYTHONPATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [["fresh_alpha.tasks", "fresh_gamma.tasks"], ["alpha_job", "gamma_job"]]
    assert ("ERROR qtasks.contrib.django autodiscover_tasks: cannot import 'fresh_broken.tasks': "
            "ModuleNotFoundError: No module named 'qtasks_not_installed_dependency'") in result.stderr


def test_autodiscover_wants_a_list_of_module_names() -> None:
    with pytest.raises(TypeError, match=r"autodiscover_tasks: modules must be a list of module names, e\.g\. \['tasks'\], got 'tasks'"):
        autodiscover_tasks(None, "tasks")


# -- the example project --------------------------------------------------------------------------


async def test_the_example_project_runs_as_documented(tmp_path: Path) -> None:
    """migrate, a worker, runserver; POST an order: the worker confirms it (Django ORM in the
    task) and the mailer app's task sends the mail; GET shows it confirmed."""
    project = copy_example("django", tmp_path)
    name = f"django-example-{uuid4().hex[:8]}"
    env = child_env() | {"QTASKS_APP_NAME": name, "QTASKS_BROKER_URL": SHARED_URL}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    worker_command = [sys.executable, "-m", "qtasks", "-A", "shopsite.qtasks_app:app", "run"]
    web_command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    client = AsyncQueueTasks(name=name, broker_url=SHARED_URL)
    try:
        with background_process(worker_command, project, env, tmp_path / "worker.log"), \
                background_process(web_command, project, env, tmp_path / "web.log") as web:
            wait_until_listening(port, web, tmp_path / "web.log")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                placed = await http.post("/orders/", data={"item": "book", "quantity": "2", "email": "buyer@example.org"})
                assert placed.status_code == 201, placed.text
                order = placed.json()
                confirmed = await client.wait_result(order["task"], timeout=30)
                assert confirmed is not None, (tmp_path / "worker.log").read_text()
                assert (confirmed.task_name, confirmed.args, confirmed.status) == ("confirm_order", (order["order"],), "success")
                mail = await client.wait_result(confirmed.returning["email_task"], timeout=30)
                shown = (await http.get(f"/orders/{order['order']}/")).json()
    finally:
        await client.close()
        delete_app_keys(name)
    assert confirmed.returning["order"] == f"{order['order']} confirmed"
    assert mail is not None and (mail.status, mail.returning) == ("success", f"sent 'Order {order['order']}: 2 x book' to buyer@example.org")
    assert shown == {"order": order["order"], "item": "book", "quantity": 2, "status": "confirmed"}
