"""The test cases at their original import path: ``AsyncTestCase`` and ``SyncTestCase`` (docs/testing.md)."""

from __future__ import annotations

from qtasks.tests.async_testcase import AsyncTestCase
from qtasks.tests.base import BaseTestCase
from qtasks.tests.sync_testcase import SyncTestCase

__all__ = ["AsyncTestCase", "SyncTestCase", "BaseTestCase"]
