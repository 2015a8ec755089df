"""Clock helpers: integer microseconds UTC everywhere on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def us_to_datetime(ts_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=ts_us)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_to_us(value: int) -> int:
    """Binance epoch integer in s, ms or µs (detected by magnitude) -> µs.

    Spot dumps switched from ms to µs on 2025-01-01; magnitudes do not overlap for any date after
    1973, so detecting per value is safe.
    """
    if value >= 10**17:  # ns
        return value // 1000
    if value >= 10**14:  # µs
        return value
    if value >= 10**11:  # ms
        return value * 1000
    return value * 1_000_000  # s
