"""``sqlite://`` URLs: the database file they name and the durability they ask for."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlsplit

from qtasks.errors import ConfigurationError

__all__ = ["path_of", "DEFAULT_FILE", "FORM", "SYNCHRONOUS"]

DEFAULT_FILE = "qtasks.sqlite3"
FORM = "write sqlite:///relative/path.sqlite3 or sqlite:////absolute/path.sqlite3"
SYNCHRONOUS = ("normal", "full")


def path_of(url: str) -> tuple[str, str]:
    """Return the absolute file path and the ``synchronous`` mode of a ``sqlite://`` URL.

    ``sqlite://`` alone names ``qtasks.sqlite3`` in the working directory; ``sqlite:///x`` is
    relative to it, ``sqlite:////x`` absolute. ``?synchronous=full`` also survives power loss.

    Raises:
        ConfigurationError: A host, ``:memory:``, an unknown option or a bad ``synchronous``.
    """
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(f"broker URL {url!r} names a host ({parts.netloc!r}), but a SQLite database is a local file: {FORM}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if path == ":memory:":
        raise ConfigurationError(f"broker URL {url!r}: an in-memory SQLite database is not shared between processes; use memory:// for a one-process queue, or {FORM}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise ConfigurationError(f"broker URL {url!r}: unknown option(s) {', '.join(unknown)}; the only one is synchronous=normal|full")
    synchronous = options.get("synchronous", "normal").lower()
    if synchronous not in SYNCHRONOUS:
        raise ConfigurationError(f"broker URL {url!r}: synchronous={synchronous!r}; use synchronous=normal (the default) or synchronous=full")
    return os.path.abspath(os.path.expanduser(path or DEFAULT_FILE)), synchronous
