"""The test cases at their original import path: ``AsyncTestCase`` and ``SyncTestCase`` (docs/testing.md)."""

from __future__ import annotations

from qtasks.tests.cases import AsyncTestCase, BaseTestCase, SyncTestCase

__all__ = ["AsyncTestCase", "SyncTestCase", "BaseTestCase"]
