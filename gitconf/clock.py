"""UTC time as the store keeps it."""

from __future__ import annotations

import datetime as dt

__all__ = ["aware", "iso", "utcnow"]


def utcnow() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones, PostgreSQL ones
    in the session's TimeZone)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """A time as ISO 8601 with a Z, to the millisecond; None stays None."""
    if value is None:
        return None
    return aware(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
