"""The builtin plugins, by short name; the kernel finds them here by name and imports none."""

from __future__ import annotations

__all__ = ["DEFAULT_PLUGINS"]

DEFAULT_PLUGINS: dict[str, str] = {
    "serializer": "qtasks.builtin_plugins.serializer",
    "memory_broker": "qtasks.builtin_plugins.memory_broker",
    "memory_storage": "qtasks.builtin_plugins.memory_storage",
    "memory_global_config": "qtasks.builtin_plugins.memory_global_config",
    "redis_broker": "qtasks.builtin_plugins.redis_broker",
    "redis_storage": "qtasks.builtin_plugins.redis_storage",
    "redis_global_config": "qtasks.builtin_plugins.redis_global_config",
    "sqlite_broker": "qtasks.builtin_plugins.sqlite_broker",
    "sqlite_storage": "qtasks.builtin_plugins.sqlite_storage",
    "sqlite_global_config": "qtasks.builtin_plugins.sqlite_global_config",
    "executor": "qtasks.builtin_plugins.executor",
    "retries": "qtasks.builtin_plugins.retries",
    "time_limits": "qtasks.builtin_plugins.time_limits",
    "context": "qtasks.builtin_plugins.context",
    "generators": "qtasks.builtin_plugins.generators",
    "cancel": "qtasks.builtin_plugins.cancel",
    "depends": "qtasks.builtin_plugins.depends",
    "state": "qtasks.builtin_plugins.state",
    "typed_args": "qtasks.builtin_plugins.typed_args",
    "unique": "qtasks.builtin_plugins.unique",
    "timers": "qtasks.builtin_plugins.timers",
    "logging": "qtasks.builtin_plugins.logging",
    "plugins_cmd": "qtasks.builtin_plugins.plugins_cmd",
    "operator_cmd": "qtasks.builtin_plugins.operator_cmd",
    "stats_cmd": "qtasks.builtin_plugins.stats_cmd",
    "task_cmd": "qtasks.builtin_plugins.task_cmd",
}
