"""Every hook has a spec with metadata and a docstring, a test, and a documentation heading."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from qtasks.asyncio import QueueTasks

ROOT = Path(__file__).parents[1]
SPECS = QueueTasks(name="meta").pm.specs


def _spec_function(hook: str):  # noqa: ANN202
    import importlib

    from qtasks.hookspecs import SPEC_MODULES

    for module_name in SPEC_MODULES:
        function = getattr(importlib.import_module(module_name), hook, None)
        if function is not None:
            return function
    raise LookupError(hook)


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_every_hook_has_a_docstring_and_metadata(hook: str) -> None:
    function = _spec_function(hook)
    assert function.__doc__ and len(function.__doc__.strip()) > 40, f"{hook} needs a docstring"
    spec = SPECS[hook]
    assert spec.fired_by, f"{hook} names no component that fires it"
    assert spec.is_async == inspect.iscoroutinefunction(function), f"{hook}: async spec iff async mode"


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_every_hook_has_a_test(hook: str) -> None:
    name = "test_hook_" + hook.removeprefix("qtasks_")
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"def {name}\b", sources), f"write a test named {name}"


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    args = ", ".join(inspect.signature(_spec_function(hook)).parameters)
    heading = f"### {hook}({args})"
    assert heading in (ROOT / "docs" / "architecture.md").read_text(), f"docs/architecture.md needs the heading {heading!r}"
