"""Time conventions shared by the governance modules (pure, no clock reads).

Every instant is a timezone-aware :class:`~datetime.datetime` in UTC. When written
as text it is ISO-8601 with microseconds and a ``Z`` suffix, e.g.
``2026-05-09T07:35:25.123456Z``: fixed width, so text order is time order.
Functions never read the clock; the caller passes ``at``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from faceledger.errors import InputError

__all__ = ["from_iso", "to_iso", "utc"]


def utc(value: datetime, name: str = "time") -> datetime:
    """``value`` converted to UTC; a naive datetime is refused (its zone is unknown)."""
    if not isinstance(value, datetime):
        raise InputError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def to_iso(value: datetime, name: str = "time") -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds, always 27 characters)."""
    return utc(value, name).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str | datetime, name: str = "time") -> datetime:
    """Parse an ISO-8601 instant with an explicit offset or ``Z``; a datetime passes through."""
    if isinstance(text, datetime):
        return utc(text, name)
    if not isinstance(text, str):
        raise InputError(f"{name} must be an ISO-8601 string, got {type(text).__name__}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} is not an ISO-8601 time: {text!r}") from None
    return utc(parsed, name)
