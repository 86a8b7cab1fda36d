"""pytest plugin (``pytest11`` entry point) and test helpers: fixtures, hook recorder, worker, eager mode, virtual clock."""

from __future__ import annotations

from qtasks.testing.eager_mode import eager
from qtasks.testing.fixtures import (
    hook_recorder,
    qtasks_app,
    qtasks_clock,
    qtasks_eager,
    qtasks_hooks,
    qtasks_sync_app,
    qtasks_sync_clock,
    qtasks_sync_eager,
    qtasks_sync_hooks,
    qtasks_sync_worker,
    qtasks_worker,
)
from qtasks.testing.recorder import HookRecorder, recording_hooks
from qtasks.testing.records import RecordRoundTrip
from qtasks.testing.virtual_clock import SyncVirtualClock, VirtualClock, clock_of
from qtasks.testing.workers import running_worker

__all__ = [
    "HookRecorder", "recording_hooks", "running_worker", "eager", "VirtualClock", "SyncVirtualClock", "clock_of",
    "RecordRoundTrip", "hook_recorder", "qtasks_app", "qtasks_worker", "qtasks_hooks", "qtasks_clock", "qtasks_eager",
    "qtasks_sync_app", "qtasks_sync_worker", "qtasks_sync_hooks", "qtasks_sync_clock", "qtasks_sync_eager",
]
