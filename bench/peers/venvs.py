"""Peer benchmark: read each adapter's literals and make (or reuse) its virtualenv under .peer-venvs/."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

__all__ = ["ADAPTERS", "REPO", "VENVS", "Adapter", "VenvError", "discover", "ensure_python", "installed_versions", "read_adapter"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ADAPTERS = HERE / "adapters"
VENVS = REPO / ".peer-venvs"  # outside bench/, which the lint reads
INSTALL_TIMEOUT = 900.0
# What the harness reads from an adapter, with the value used when the adapter leaves it out.
_LITERALS: dict[str, Any] = {"REQUIREMENTS": None, "SETTINGS": "", "ASYNC": False, "CONCURRENCY": None, "EXTRA_PHASES": []}
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(==\s*([^\s;,]+))?")


class VenvError(RuntimeError):
    """A virtualenv could not be made or its requirements could not be installed."""


@attrs.frozen
class Adapter:
    """One framework's adapter file and what it declares at its top."""

    name: str
    path: Path
    requirements: list[str]
    settings: str
    is_async: bool
    concurrency: dict[str, int]  # mode ("noop" / "sleep") -> worker --concurrency
    extra_phases: list[str]  # e.g. ["batch", "two_processes"] (QTasks only)

    @property
    def uses_repo(self) -> bool:
        """True when the adapter needs nothing but this repository (it can run in the harness's venv)."""
        return self.requirements == ["<repo>"]


def _literals(path: Path) -> dict[str, Any] | None:
    """The module-level literals the harness reads; None when the file has no REQUIREMENTS (a helper module)."""
    found = dict(_LITERALS)
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in found:
                try:
                    found[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError as error:
                    raise VenvError(f"{path.name}: {node.targets[0].id} must be a literal ({error})") from None
    return None if found["REQUIREMENTS"] is None else found


def read_adapter(path: Path) -> Adapter:
    """Read REQUIREMENTS, SETTINGS, ASYNC (and the optional CONCURRENCY, EXTRA_PHASES) with ``ast``.
    The framework's name is the file's stem without an ``adapter_`` prefix."""
    found = _literals(path)
    if found is None or not isinstance(found["REQUIREMENTS"], list) or not found["REQUIREMENTS"]:
        raise VenvError(f"{path.name}: needs a literal REQUIREMENTS = [...] list at the top")
    default_noop = 10 if found["ASYNC"] else 1
    concurrency = {"noop": default_noop, "sleep": 100, **(found["CONCURRENCY"] or {})}
    return Adapter(name=path.stem.removeprefix("adapter_"), path=path, requirements=list(found["REQUIREMENTS"]),
                   settings=str(found["SETTINGS"]), is_async=bool(found["ASYNC"]), concurrency=concurrency,
                   extra_phases=list(found["EXTRA_PHASES"]))


def discover(only: list[str] | None = None) -> list[Adapter]:
    """The adapters in bench/peers/adapters/ (files with a REQUIREMENTS literal), qtasks first, then
    by name, limited to ``only``."""
    adapters = sorted((read_adapter(p) for p in ADAPTERS.glob("[!_]*.py") if _literals(p) is not None),
                      key=lambda a: (a.name != "qtasks", a.name))
    known = [a.name for a in adapters]
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        raise SystemExit(f"unknown framework(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    return [a for a in adapters if not only or a.name in only]


_PROBE = """
import json, sys
from importlib import metadata
out = {}
for name in json.loads(sys.argv[1]):
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def _distributions(requirements: list[str]) -> dict[str, str | None]:
    """Distribution name -> pinned version (None: unpinned); "<repo>" is the ``qtasks`` distribution."""
    pins: dict[str, str | None] = {}
    for requirement in requirements:
        if requirement == "<repo>":
            pins["qtasks"] = None
            continue
        match = _PIN.match(requirement)
        if match:
            pins[match.group(1)] = match.group(4)
    return pins


def installed_versions(python: Path | str, requirements: list[str]) -> dict[str, str | None]:
    """The installed version of each required distribution in ``python``'s environment (None: missing)."""
    names = list(_distributions(requirements))
    done = subprocess.run([str(python), "-I", "-c", _PROBE, json.dumps(names)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {name: None for name in names}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _matches(python: Path, requirements: list[str]) -> bool:
    pins = _distributions(requirements)
    installed = installed_versions(python, requirements)
    return all(installed.get(name) is not None and (pin is None or installed[name] == pin) for name, pin in pins.items())


def _pip_arguments(requirements: list[str]) -> list[str]:
    arguments: list[str] = []
    for requirement in requirements:
        arguments += ["-e", str(REPO)] if requirement == "<repo>" else [requirement]
    return arguments


def ensure_python(adapter: Adapter, override: str | None = None, log: Any = print) -> Path:
    """The interpreter to run ``adapter`` with: ``override``; the harness's own for a "<repo>"-only
    adapter; else ``.peer-venvs/<name>/bin/python``, made now or reused when its installed pins match.

    Raises:
        VenvError: the virtualenv or the pip install failed (the message ends with pip's last lines).
    """
    if override:
        return Path(override)
    if adapter.uses_repo:
        return Path(sys.executable)
    venv = VENVS / adapter.name
    python = venv / "bin" / "python"
    if python.exists() and _matches(python, adapter.requirements):
        return python
    log(f"[{adapter.name}] installing {' '.join(adapter.requirements)} into {venv.relative_to(REPO)} ...")
    steps = [] if python.exists() else [[sys.executable, "-m", "venv", str(venv)]]
    steps.append([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *_pip_arguments(adapter.requirements)])
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise VenvError(f"{' '.join(step[:4])} ... took more than {INSTALL_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-4:])
            raise VenvError(f"{adapter.name}: `{' '.join(step[2:])}` failed (exit {done.returncode}): {tail}")
    if not _matches(python, adapter.requirements):
        raise VenvError(f"{adapter.name}: after pip install the pins still differ: {installed_versions(python, adapter.requirements)}")
    return python
