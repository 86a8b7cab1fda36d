"""``AsyncState`` and ``SyncState`` at their original import path, ``qtasks.plugins.states``."""

from __future__ import annotations

from qtasks.builtin_plugins.state import AsyncState, SyncState

__all__ = ["AsyncState", "SyncState"]
