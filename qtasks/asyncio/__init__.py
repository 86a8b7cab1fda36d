"""The async application: ``from qtasks.asyncio import QueueTasks``."""

from __future__ import annotations

from qtasks.kernel.app import AsyncQueueTasks as QueueTasks

__all__ = ["QueueTasks"]
