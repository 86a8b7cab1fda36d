"""MemoryQueue: the delays of a memory:// broker, as the virtual clock and eager mode move them.

This is the one place where the test helpers read the memory broker's internals (its entries
and its heap of delayed envelopes); a change there shows up in tests/test_testing_helpers.py.
"""

from __future__ import annotations

import time
from typing import Any

from qtasks.builtin_plugins.memory_broker import MemoryBroker
from qtasks.errors import ConfigurationError
from qtasks.kernel.urls import redact_url

__all__ = ["MemoryQueue"]


class MemoryQueue:
    """A view of a :class:`MemoryBroker` that can make time pass for its delayed envelopes.

    Delayed envelopes (a countdown, an eta, a retry's delay) wait in the broker until their epoch
    time; :meth:`shift` brings all of them closer by the same amount, which is what letting that
    much time pass would do. Leases are left alone: a worker of this process renews them anyway.

    Args:
        broker: The memory broker.
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    @classmethod
    def of(cls, kernel: Any, helper: str) -> MemoryQueue:
        """The queue of an async app (the kernel of a sync one) whose broker is ``memory://``.

        Raises:
            ConfigurationError: the app's broker is another one, naming the fix.
        """
        broker = kernel.broker
        if not isinstance(broker, MemoryBroker):
            raise ConfigurationError(
                f"{helper} works on a memory:// app; app {kernel.name!r} uses {redact_url(kernel.url)!r} "
                f"({type(broker).__name__}): build it with broker_url='memory://' (or QTASKS_BROKER_URL=memory://) in tests"
            )
        return cls(broker)

    def _delays(self) -> list[float]:
        """The epoch times of the live delayed envelopes (the heap also keeps stale items)."""
        entries = self.broker._entries
        dues = []
        for due, token, uuid in self.broker._delayed:
            entry = entries.get(uuid)
            if entry is not None and entry.token == token and entry.state == "delayed":
                dues.append(due)
        return dues

    def next_due(self) -> float | None:
        """Seconds until the next delayed envelope falls due (those due already left out), or None."""
        clock = time.time()
        later = [due for due in self._delays() if due > clock]
        return min(later) - clock if later else None

    def busy(self) -> dict[str, int]:
        """What a worker has to do now, by state: ``ready``, ``leased`` (running or about to) and
        ``due`` (delayed envelopes whose time has come); the states with none left out."""
        states = [entry.state for entry in self.broker._entries.values()]
        clock = time.time()
        counts = {"ready": states.count("ready"), "leased": states.count("leased"), "due": sum(due <= clock for due in self._delays())}
        return {state: count for state, count in counts.items() if count}

    def shift(self, seconds: float) -> None:
        """Let ``seconds`` pass for every delayed envelope, and wake the waiting claims."""
        if seconds <= 0:
            return
        # The same amount off every key keeps the heap ordered.
        self.broker._delayed[:] = [(due - seconds, token, uuid) for due, token, uuid in self.broker._delayed]
        self.broker._wake()
