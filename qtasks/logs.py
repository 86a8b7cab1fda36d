"""``Logger``: a small wrapper over a stdlib logger that adds the component's ``subname``."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Logger", "plain_handler", "DEFAULT_FORMAT"]

DEFAULT_FORMAT = "%(asctime)s [%(name)s: %(levelname)s] (%(subname)s) %(message)s"


def _default_subname(record: logging.LogRecord) -> bool:
    """Give records from plain stdlib loggers (``qtasks.worker``, ...) a ``subname`` to format."""
    if not hasattr(record, "subname"):
        record.subname = record.name
    return True


def plain_handler(format: str = DEFAULT_FORMAT, stream: Any = None) -> logging.Handler:
    """A ``StreamHandler`` (stderr by default) writing ``format`` lines; records without a
    ``subname`` show their logger name there."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(_default_subname)
    handler.setFormatter(logging.Formatter(format))
    return handler


class Logger:
    """Log through ``logging.getLogger(name)`` with ``extra={"subname": subname}``.

    Args:
        name: The stdlib logger name (the app name).
        subname: The component, shown by the ``%(subname)s`` field.
        default_level: The level set on the stdlib logger.
        format: A format string for the handler added when the logger has none.
    """

    def __init__(
        self, name: str, subname: str | None = None, default_level: int = logging.INFO, format: str | None = None, *, configure: bool = True,
    ) -> None:
        self.name = name
        self.subname = subname or name
        self.default_level = default_level
        self.format = format or DEFAULT_FORMAT
        self.logger = logging.getLogger(name)
        if configure:  # the original behaviour; an app leaves this to its ``logging`` plugin
            if not self.logger.handlers:
                self.logger.addHandler(plain_handler(self.format))
                self.logger.propagate = False
            self.logger.setLevel(default_level)

    def _log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        extra = {"subname": self.subname, **kwargs.pop("extra", {})}
        self.logger.log(level, msg, *args, extra=extra, **kwargs)

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log at CRITICAL."""
        self._log(logging.CRITICAL, msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR."""
        self._log(logging.ERROR, msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log at DEBUG."""
        self._log(logging.DEBUG, msg, *args, **kwargs)

    def with_subname(self, new_subname: str, default_level: int | None = None, format: str | None = None) -> Logger:
        """Return a logger for another component of the same app."""
        return Logger(self.name, new_subname, default_level or self.default_level, format or self.format)

    def update_logger(self, **kwargs: Any) -> Logger:
        """Return a copy with ``name``, ``subname``, ``default_level`` or ``format`` changed."""
        params = {"name": self.name, "subname": self.subname, "default_level": self.default_level, "format": self.format}
        params.update(kwargs)
        return Logger(**params)
