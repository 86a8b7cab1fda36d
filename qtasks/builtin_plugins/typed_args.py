"""typed_args: a builtin task-feature plugin (being written)."""

from __future__ import annotations

__all__: list[str] = []
