"""``Depends`` and ``ScopeEnum`` at their original import path, ``qtasks.plugins.depends``."""

from __future__ import annotations

from qtasks.builtin_plugins.depends import Depends, ScopeEnum

__all__ = ["Depends", "ScopeEnum"]
