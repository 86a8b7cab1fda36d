"""Integrations with other frameworks, one module per extra: ``qtasks.contrib.django``, ``qtasks.contrib.grpc``."""

from __future__ import annotations

__all__: list[str] = []
