"""``QueueConfig`` at its original import path."""

from __future__ import annotations

from qtasks.kernel.config import QueueConfig

__all__ = ["QueueConfig"]
