"""Settings of the live Binance feed (env prefix ``INGEST_LIVE_``).

Every endpoint, route, timeout and budget is a named field with its unit in the name, so a test can
point the feed at a local server and shrink the timers, and ops can move a rotation to a quiet hour.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.config import CommonSettings

STREAM_KINDS = ("trade", "aggTrade")
STATUS_KINDS = ("kline_1m", "bookTicker")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class LiveSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_LIVE_", env_file=".env", env_ignore_empty=True, extra="ignore")

    # What to subscribe. Instruments are ``venue.SYMBOL``; ``stream_kinds`` overrides the default per instrument.
    instruments: list[str] = Field(default_factory=lambda: ["binance-spot.BTCUSDT", "binance-spot.ETHUSDT"])
    default_stream_kind: str = Field("trade", description="'trade' or 'aggTrade' for instruments not in stream_kinds")
    stream_kinds: dict[str, str] = Field(default_factory=dict, description="instrument id -> 'trade' | 'aggTrade'")
    status_streams: list[str] = Field(
        default_factory=list, description="extra per-instrument streams watched for liveness only: kline_1m, bookTicker"
    )
    instance: str = Field("live-1", description="heartbeat instance name")

    # Endpoints. USD-M is routed by stream category since 2026 (DOMAIN_NOTES 3.3).
    spot_ws_base_url: str = "wss://data-stream.binance.vision"
    spot_rest_base_url: str = "https://data-api.binance.vision"
    usdm_ws_base_url: str = "wss://fstream.binance.com"
    usdm_rest_base_url: str = "https://fapi.binance.com"
    usdm_public_route: str = "/public"
    usdm_market_route: str = "/market"
    combined_path: str = "/stream"
    max_streams_per_connection: int = Field(1024, ge=1, le=1024)

    # REST paths (trade-id cursors, limit <= 1000).
    spot_agg_trades_path: str = "/api/v3/aggTrades"
    spot_trades_path: str = "/api/v3/historicalTrades"
    spot_recent_trades_path: str = "/api/v3/trades"
    spot_time_path: str = "/api/v3/time"
    usdm_agg_trades_path: str = "/fapi/v1/aggTrades"
    usdm_trades_path: str = "/fapi/v1/historicalTrades"
    usdm_recent_trades_path: str = "/fapi/v1/trades"
    usdm_time_path: str = "/fapi/v1/time"
    rest_page_limit: int = Field(1000, ge=1, le=1000)
    rest_timeout_s: float = Field(10.0, gt=0)
    api_key: str = Field("", description="optional X-MBX-APIKEY header (historicalTrades on some venues)")

    # Weight budget per minute (spot 6000, USD-M 2400); we stop at this fraction of it.
    spot_weight_limit_1m: int = Field(6000, gt=0)
    usdm_weight_limit_1m: int = Field(2400, gt=0)
    weight_safety_fraction: float = Field(0.8, gt=0, le=1)
    spot_agg_trades_weight: int = 4
    spot_trades_weight: int = 25
    usdm_agg_trades_weight: int = 20
    usdm_trades_weight: int = 20
    default_retry_after_s: float = Field(60.0, gt=0, description="wait after 429/418 without a Retry-After header")

    # Connection lifecycle.
    open_timeout_s: float = Field(10.0, gt=0)
    close_timeout_s: float = Field(2.0, gt=0)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    backoff_factor: float = Field(2.0, ge=1)
    backoff_jitter: float = Field(0.5, ge=0, le=1, description="fraction of the delay drawn at random")
    healthy_after_s: float = Field(30.0, gt=0, description="a connection up this long resets the backoff")
    watchdog_silence_s: float = Field(60.0, gt=0, description="a subscribed stream silent this long kills its connection")
    watchdog_interval_s: float = Field(1.0, gt=0)
    rotate_after_s: float = Field(23 * 3600.0, gt=0, description="planned rotation age (Binance cuts at 24 h)")
    rotate_at_utc: str = Field("", description="'HH:MM' daily quiet time to rotate at instead of rotate_after_s")
    rotate_handover_timeout_s: float = Field(30.0, gt=0, description="give up a rotation if the new socket is silent")
    max_frame_bytes: int = Field(1 << 20, gt=0)

    # Gap backfill and seeding.
    gap_grace_s: float = Field(0.3, ge=0, description="wait for a sibling connection to fill a gap before REST")
    backfill_deadline_s: float = Field(60.0, gt=0, description="unfilled ids after this become a GapEvent")
    held_ticks_max: int = Field(100_000, gt=0, description="live ticks held per stream while backfilling")
    seed_lookback_s: float = Field(900.0, ge=0, description="history loaded at start (0 disables seeding)")
    seed_max_pages: int = Field(20, ge=1)
    resume_max_age_s: float = Field(
        900.0, ge=0, description="on start, continue from the last live tick in Redis if it is this recent (0: never)"
    )

    # Publishing and health.
    queue_size: int = Field(200_000, gt=0)
    batch_size: int = Field(2000, gt=0)
    status_interval_s: float = Field(2.0, gt=0)
    check_max_silence_s: float = Field(120.0, gt=0, description="--check fails when a stream is silent this long")

    @field_validator("default_stream_kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in STREAM_KINDS:
            raise ValueError(f"stream kind must be one of {STREAM_KINDS}, got {v!r}")
        return v

    @field_validator("stream_kinds")
    @classmethod
    def _kinds(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: kind for k, kind in v.items() if kind not in STREAM_KINDS}
        if bad:
            raise ValueError(f"stream kinds must be one of {STREAM_KINDS}: {bad}")
        return v

    @field_validator("status_streams")
    @classmethod
    def _status(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in STATUS_KINDS]
        if bad:
            raise ValueError(f"status streams must be among {STATUS_KINDS}: {bad}")
        return v

    @field_validator("rotate_at_utc")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if v and not _HHMM.match(v):
            raise ValueError(f"rotate_at_utc must be 'HH:MM' (UTC), got {v!r}")
        return v

    def kind_for(self, instrument: str) -> str:
        return self.stream_kinds.get(instrument, self.default_stream_kind)
