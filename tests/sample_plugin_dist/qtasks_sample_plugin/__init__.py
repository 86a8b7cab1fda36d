"""A third-party plugin found through the ``qtasks`` entry-point group: tags every new task."""

from __future__ import annotations

from typing import Any

import attrs

from qtasks import TaskCall, hookimpl


class SamplePlugin:
    """Adds ``extra={"sample": True}`` to every task call."""

    @hookimpl
    def qtasks_task_prepare(self, app: Any, call: TaskCall) -> TaskCall:
        return attrs.evolve(call, extra={**call.extra, "sample": True})

    @hookimpl
    def qtasks_register_task_options(self, register: Any) -> None:
        register("sample_option", None, "An option owned by the sample plugin.")
