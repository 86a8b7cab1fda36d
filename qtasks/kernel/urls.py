"""Broker URLs: choosing the default, checking the scheme, and hiding passwords in messages."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from qtasks.errors import ConfigurationError, close_matches

__all__ = ["DEFAULT_URL", "KNOWN_SCHEMES", "resolve_url", "redact_url", "scheme_of", "unknown_scheme_hint"]

DEFAULT_URL = "sqlite:///qtasks.sqlite3"
KNOWN_SCHEMES = ("memory", "redis", "rediss", "unix", "sqlite", "amqp", "amqps", "nats", "kafka")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def scheme_of(url: str) -> str:
    """Return the URL's scheme, lower-cased."""
    return urlsplit(url).scheme.lower()


def resolve_url(url: str | None) -> str:
    """Return ``url``, else ``QTASKS_BROKER_URL``, else the default; reject a URL with no scheme."""
    chosen = url or os.environ.get("QTASKS_BROKER_URL") or DEFAULT_URL
    if not isinstance(chosen, str) or "://" not in chosen:
        raise ConfigurationError(
            f"broker URL {redact_url(str(chosen))!r} has no scheme: write it as scheme://..., e.g. redis://localhost:6379/0"
        )
    return chosen


def unknown_scheme_hint(url: str) -> str:
    """Return a hint for a URL whose scheme no plugin serves."""
    scheme = scheme_of(url)
    if scheme in KNOWN_SCHEMES:
        return f"no installed plugin serves URL scheme {scheme!r} yet"
    return f"no plugin serves URL scheme {scheme!r}{close_matches(scheme, KNOWN_SCHEMES)}"
