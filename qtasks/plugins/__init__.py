"""The task-feature classes users import, at their original path: ``from qtasks.plugins import AsyncState``."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Depends", "ScopeEnum", "AsyncState", "SyncState", "ArgumentValidationError"]

_WHERE = {
    "Depends": "qtasks.builtin_plugins.depends",
    "ScopeEnum": "qtasks.builtin_plugins.depends",
    "AsyncState": "qtasks.builtin_plugins.state",
    "SyncState": "qtasks.builtin_plugins.state",
    "ArgumentValidationError": "qtasks.builtin_plugins.typed_args",
    "AsyncgRPCPlugin": "qtasks.contrib.grpc",  # the grpc extra
    "SyncgRPCPlugin": "qtasks.contrib.grpc",
}


def __getattr__(name: str) -> Any:
    """Import a feature class on first use; an unknown name raises AttributeError."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'qtasks.plugins' has no attribute {name!r}; it offers {', '.join(__all__)}")
    return getattr(importlib.import_module(module), name)
