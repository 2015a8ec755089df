"""TimescaleDB policy settings (env prefix ``TIMESCALE_``): compression, retention, continuous aggregates.

Intervals are written the way PostgreSQL spells them, ``"<n> <unit>"`` with a unit from seconds to
weeks (``"36 hours"``, ``"7 days"``); ``"off"`` disables a retention policy. Months and years are
refused because their length varies, which would make "is the policy already as configured?"
ambiguous. Values are validated here, so the SQL built from them cannot carry anything else.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_INTERVAL = re.compile(r"^\s*(\d{1,6})\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
OFF = "off"


def parse_interval(text: str) -> timedelta:
    """``"7 days"`` -> ``timedelta(days=7)``; raises ValueError with the accepted form otherwise."""
    match = _INTERVAL.match(text)
    if match is None:
        raise ValueError(f"interval {text!r} must look like '<n> <seconds|minutes|hours|days|weeks>', e.g. '7 days'")
    count, unit = int(match.group(1)), match.group(2).lower()
    if count == 0:
        raise ValueError(f"interval {text!r} must be positive")
    return timedelta(seconds=count * _UNIT_SECONDS[unit])


def sql_interval(text: str) -> str:
    """A validated interval as an SQL literal: ``INTERVAL '7 days'``."""
    parse_interval(text)  # raises with the accepted form
    match = _INTERVAL.match(text)
    assert match is not None
    return f"INTERVAL '{int(match.group(1))} {match.group(2).lower()}s'"


def _interval(value: str) -> str:
    parse_interval(value)
    return value.strip().lower()


def _interval_or_off(value: str) -> str:
    if value.strip().lower() in (OFF, "", "none"):
        return OFF
    return _interval(value)


class TimescaleSettings(BaseSettings):
    """Policies applied by ``apply_timescale_policies`` after migrations (TimescaleDB only)."""

    model_config = SettingsConfigDict(env_prefix="TIMESCALE_", env_file=".env", env_ignore_empty=True, extra="ignore")

    # Compression: chunks older than this are compressed (segment by instrument/pair, newest first).
    ticks_compress_after: str = Field("1 day", description="Compress tick chunks older than this.")
    bars_compress_after: str = Field("7 days", description="Compress bar chunks older than this.")
    metrics_compress_after: str = Field("7 days", description="Compress pair-metric chunks older than this.")

    # Retention: chunks older than this are dropped ("off" keeps everything).
    ticks_retention: str = Field("14 days", description="Drop tick chunks older than this ('off' to keep).")
    bars_retention: str = Field(OFF, description="Drop bar chunks older than this ('off' to keep).")
    metrics_retention: str = Field("180 days", description="Drop pair-metric chunks older than this ('off' to keep).")

    # Continuous aggregates of 1m bars into 1h and 1d bars, refreshed in the background.
    continuous_aggregates: bool = Field(True, description="Create bars_1h / bars_1d continuous aggregates.")
    bars_1h_refresh_start: str = Field("3 days", description="Oldest bucket the 1h refresh job revisits.")
    bars_1h_refresh_end: str = Field("1 hour", description="Newest buckets left to real-time aggregation.")
    bars_1h_refresh_every: str = Field("15 minutes", description="How often the 1h refresh job runs.")
    bars_1d_refresh_start: str = Field("30 days", description="Oldest bucket the 1d refresh job revisits.")
    bars_1d_refresh_end: str = Field("1 day", description="Newest buckets left to real-time aggregation.")
    bars_1d_refresh_every: str = Field("1 hour", description="How often the 1d refresh job runs.")

    @field_validator(
        "ticks_compress_after", "bars_compress_after", "metrics_compress_after",
        "bars_1h_refresh_start", "bars_1h_refresh_end", "bars_1h_refresh_every",
        "bars_1d_refresh_start", "bars_1d_refresh_end", "bars_1d_refresh_every",
    )
    @classmethod
    def _check_interval(cls, value: str) -> str:
        return _interval(value)

    @field_validator("ticks_retention", "bars_retention", "metrics_retention")
    @classmethod
    def _check_retention(cls, value: str) -> str:
        return _interval_or_off(value)

    @model_validator(mode="after")
    def _refresh_windows_cover_two_buckets(self) -> TimescaleSettings:
        # TimescaleDB refuses a refresh policy whose window is shorter than two buckets.
        for view, bucket in (("bars_1h", timedelta(hours=1)), ("bars_1d", timedelta(days=1))):
            start = parse_interval(getattr(self, f"{view}_refresh_start"))
            end = parse_interval(getattr(self, f"{view}_refresh_end"))
            if start - end < 2 * bucket:
                raise ValueError(f"{view}: refresh start minus end must cover at least two buckets ({2 * bucket})")
        return self
