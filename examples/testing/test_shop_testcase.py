"""The shop tested with the original API: ``AsyncTestCase`` and ``TestConfig`` in a unittest class."""

from __future__ import annotations

import unittest

import shop

from qtasks.schemas.test import TestConfig
from qtasks.tests import AsyncTestCase


class TestWithTheOriginalTestCase(unittest.IsolatedAsyncioTestCase):
    """The original ``AsyncTestCase`` API, in a unittest class."""

    async def asyncSetUp(self) -> None:
        self.case = AsyncTestCase(app=shop.app)
        self.case.settings(TestConfig.only_worker())  # no broker: add_task runs the task at once

    async def asyncTearDown(self) -> None:
        await self.case.stop()

    async def test_a_charge_is_retried_at_once(self) -> None:
        record = await self.case.add_task("charge", 10, 500)
        assert record is not None
        self.assertEqual((record.status, record.returning, record.attempts), ("success", "order 10: charged 5.00", 2))
