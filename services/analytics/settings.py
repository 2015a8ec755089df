"""Analytics worker settings (env prefix ``ANALYTICS_``)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import CommonSettings
from shared.streams import METRIC_STREAM_MAXLEN_DEFAULT
from shared.timeframes import DEFAULT_TIMEFRAMES


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class AnalyticsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", env_file=".env", env_ignore_empty=True, extra="ignore")

    pairs: list[str] = Field(default_factory=list, description="Pairs this worker owns (explicit assignment).")
    auto: bool = Field(False, description="Take a fair share of the enabled pairs configured in the database.")
    instance: str = Field(default_factory=_default_instance, description="Consumer name; unique per worker.")
    window: int = Field(300, ge=3, description="Default rolling window (observations) for pairs created here.")
    timeframes: list[str] = Field(default_factory=lambda: list(DEFAULT_TIMEFRAMES))
    method: str = Field("ols", description="Default hedge method for pairs created here.")
    read_count: int = Field(1000, ge=1, description="Stream entries read per leg per XREADGROUP call.")
    block_ms: int = Field(200, ge=1, description="How long an idle worker blocks waiting for ticks.")
    idle_grace_s: float = Field(
        2.0,
        ge=0,
        description="Event-time grace before a drained leg counts as idle, for legs on different venues: they come "
        "through different connections, whose trade times skew (up to 0.2 s in the recorded captures).",
    )
    same_venue_grace_s: float = Field(
        0.0,
        ge=0,
        description="The same grace for legs on one venue: one ingest connection delivers them in trade-time order, "
        "so none is needed. Raise it if one venue's symbols are split over several connections or ingest processes.",
    )
    store_ticks: bool = Field(True, description="Also store raw ticks (the tick-level view) in the ticks table.")
    metric_stream_maxlen: int = Field(METRIC_STREAM_MAXLEN_DEFAULT, ge=100)
    max_deliveries: int = Field(5, ge=1, description="Deliveries before an entry goes to the dead-letter stream.")
    lease_ttl_s: float = Field(6.0, gt=0.5, description="Pair lease TTL; renewed every third of it.")
    rebalance_interval_s: float = Field(2.0, gt=0, description="How often --auto workers recompute their share.")
    metrics_port: int | None = Field(None, description="Port for the Prometheus endpoint (None: off).")
