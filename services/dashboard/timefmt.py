"""Time handling for display: everything is µs since the epoch inside, UTC text on axes, local text on hover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: Any) -> int:
    """µs since the epoch from an ISO-8601 string (UTC if no offset), a datetime, or an int of µs."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise TypeError(f"cannot read a time from {type(value).__name__}")


def utc_text(ts_us: int) -> str:
    """Plotly-friendly UTC wall time (no offset, so the axis shows UTC whatever the browser's zone)."""
    return (_EPOCH + timedelta(microseconds=ts_us)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def local_text(ts_us: int, offset_min: int) -> str:
    """Browser-local wall time; ``offset_min`` is minutes east of UTC (the negated JS getTimezoneOffset)."""
    local = _EPOCH + timedelta(microseconds=ts_us, minutes=offset_min)
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return local.strftime("%Y-%m-%d %H:%M:%S") + f" (UTC{sign}{hours:02d}:{minutes:02d})"


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "no data"
    if seconds < 1:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86_400:.1f} d ago"
