"""Timeframes and UTC bucket arithmetic. Bars are left-labelled: a bar's timestamp is its bucket start."""

from __future__ import annotations

from shared.errors import InvalidInput

US_PER_SECOND = 1_000_000

# ``tick`` is the merged tick-level view (one observation per trade); the rest are bar sizes.
TIMEFRAME_US: dict[str, int] = {
    "tick": 0,
    "1s": 1 * US_PER_SECOND,
    "5s": 5 * US_PER_SECOND,
    "1m": 60 * US_PER_SECOND,
    "5m": 300 * US_PER_SECOND,
    "15m": 900 * US_PER_SECOND,
    "1h": 3600 * US_PER_SECOND,
    "1d": 86400 * US_PER_SECOND,
}
BAR_TIMEFRAMES = tuple(tf for tf, us in TIMEFRAME_US.items() if us > 0)
DEFAULT_TIMEFRAMES = ("1s", "1m", "5m")


def timeframe_us(tf: str) -> int:
    try:
        return TIMEFRAME_US[tf]
    except KeyError:
        raise InvalidInput(f"unknown timeframe {tf!r}; choose one of {', '.join(TIMEFRAME_US)}") from None


def bucket_start(ts_us: int, tf_us: int) -> int:
    """Start of the UTC-aligned bucket containing ``ts_us`` (floor, also for pre-1970 times)."""
    return ts_us - ts_us % tf_us


def validate_timeframes(tfs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for tf in tfs:
        timeframe_us(tf)
        if tf not in out:
            out.append(tf)
    if not out:
        raise InvalidInput("at least one timeframe is required")
    # Sorted by size so that, at a shared boundary, smaller bars close (and publish) first.
    return tuple(sorted(out, key=lambda t: TIMEFRAME_US[t]))
