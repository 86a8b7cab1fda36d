"""Task handles at their original import path."""

from __future__ import annotations

from qtasks.kernel.handles import AsyncTask, AsyncTaskCls, SyncTask, SyncTaskCls

__all__ = ["AsyncTask", "SyncTask", "AsyncTaskCls", "SyncTaskCls"]
