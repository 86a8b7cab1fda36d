"""``QueueConfig``: the app's settings, read from ``QTASKS_*`` environment variables too."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["QueueConfig"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _level(raw: str, field: str) -> int:
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"QTASKS_{field.upper()}={raw!r}: use a level name (DEBUG, INFO, WARNING, ERROR, CRITICAL) or a number")
    return level


def _list(raw: str, field: str) -> list[Any]:
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValueError(f"QTASKS_{field.upper()}={raw!r}: not a JSON list ({error}); or write the items comma-separated") from None
        if not isinstance(value, list):
            raise ValueError(f"QTASKS_{field.upper()}={raw!r}: expected a list")
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


def _cast(raw: str, current: Any, field: str) -> Any:
    if field.startswith("logs_default_level"):
        return _level(raw, field)
    if isinstance(current, bool):
        low = raw.strip().lower()
        if low not in _TRUE | _FALSE:
            raise ValueError(f"QTASKS_{field.upper()}={raw!r}: use one of 1/0, true/false, yes/no, on/off")
        return low in _TRUE
    if isinstance(current, list):
        return _list(raw, field)
    if isinstance(current, (int, float)):
        try:
            return type(current)(raw)
        except ValueError:
            raise ValueError(f"QTASKS_{field.upper()}={raw!r}: expected {'an integer' if isinstance(current, int) else 'a number'}") from None
    return raw


def _default(field: Any) -> Any:
    default = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[attr-defined]


_POSITIVE = {"task_lease": 0, "result_ttl": 0, "broker_timeout": 0, "max_deliveries": 1}


@attrs.define(kw_only=True)
class QueueConfig:
    """The settings shared by every component of one app.

    Every field left at its default can be set from the environment as ``QTASKS_<FIELD>`` (lists
    comma-separated); a value given in code wins.
    ``subscribe(callback)`` calls ``callback(config, key, value)`` on every change.

    Reliability settings: ``task_lease`` (seconds a claimed task stays leased without a renewal;
    a dead worker's tasks run again after at most this long), ``max_deliveries`` (claims that may
    end without an ack before the task is dead-lettered), ``result_ttl`` (seconds a final record
    is kept) and ``broker_timeout`` (seconds a call retries an unreachable broker before
    ``BrokerUnavailable``).
    """

    max_tasks_process: int = 10
    running_older_tasks: bool = False
    delete_finished_tasks: bool = False
    task_default_priority: int = 0
    task_default_decode: Callable[..., Any] | None = None
    logs_default_level_server: int = logging.INFO
    logs_default_level_client: int = logging.INFO
    logs_format: str = "%(asctime)s [%(name)s: %(levelname)s] (%(subname)s) %(message)s"
    result_time_interval: float = 1.0
    result_statuses_end: list[str] = attrs.field(factory=lambda: ["success", "error", "cancel"])
    environ_prefix: str = "QTASKS_"
    graceful_stop_timeout: float = 30.0
    task_lease: float = 30.0
    max_deliveries: int = 5
    result_ttl: float = 86400.0
    broker_timeout: float = 10.0
    global_config_status_ttl: int = 20
    global_config_status_set_periodic: int = 17
    _subscribers: list[Callable[[QueueConfig, str, Any], None]] = attrs.field(factory=list, alias="_subscribers")
    _dynamic_fields: dict[str, Any] = attrs.field(factory=dict, alias="_dynamic_fields")

    def __attrs_post_init__(self) -> None:
        prefix = self.environ_prefix
        for field in attrs.fields(type(self)):
            name = field.name
            if name.startswith("_") or name == "environ_prefix":
                continue
            raw = os.environ.get(prefix + name.upper())
            current = getattr(self, name)
            if raw is None or current is None or callable(current) or current != _default(field):
                continue  # a value given in code wins over the environment
            object.__setattr__(self, name, _cast(raw, current, name))
        for name, minimum in _POSITIVE.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum or (minimum == 0 and value == 0):
                raise ValueError(f"QueueConfig.{name} must be a number {'>= 1' if minimum else '> 0'}, got {value!r} (also settable as QTASKS_{name.upper()})")

    def subscribe(self, callback: Callable[[QueueConfig, str, Any], None]) -> None:
        """Call ``callback(config, key, value)`` after every change of a setting."""
        self._subscribers.append(callback)

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or key in _FIELD_NAMES:
            object.__setattr__(self, key, value)
        else:  # a setting of the app's own or of a plugin: kept beside the declared ones
            self._dynamic_fields[key] = value
        if not key.startswith("_"):
            for callback in getattr(self, "_subscribers", ()):
                callback(self, key, value)

    def __getattr__(self, key: str) -> Any:
        """Read a dynamic field (one set that ``QueueConfig`` does not declare)."""
        if not key.startswith("_"):
            try:
                return object.__getattribute__(self, "_dynamic_fields")[key]
            except KeyError:
                pass
        raise AttributeError(f"QueueConfig has no setting {key!r}: set it first (config.{key} = value) or use one of {', '.join(sorted(_FIELD_NAMES))}")


_FIELD_NAMES = frozenset(field.name for field in attrs.fields(QueueConfig) if not field.name.startswith("_"))
