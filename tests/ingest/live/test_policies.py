"""Pure policies: reconnect backoff, rotation schedule, connection planning limits, checksum parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from services.ingest.download import DumpFile, parse_checksum, periods
from services.ingest.live.backoff import Backoff, backoff_delay
from services.ingest.live.plan import plan_connections, subscriptions
from services.ingest.live.settings import LiveSettings
from services.ingest.live.slot import next_rotation_delay_s
from shared.errors import InvalidInput


def test_backoff_grows_exponentially_within_jitter_band_and_caps() -> None:
    # Formula: cap = min(max, initial * factor**attempt); delay in [cap * (1 - jitter), cap].
    for attempt, cap in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0), (1000, 30.0)]:
        assert backoff_delay(attempt, 0.5, 2.0, 30.0, 0.5, 0.0) == pytest.approx(cap * 0.5)
        assert backoff_delay(attempt, 0.5, 2.0, 30.0, 0.5, 0.999999) == pytest.approx(cap, rel=1e-5)
    with pytest.raises(ValueError):
        backoff_delay(-1, 0.5, 2.0, 30.0, 0.5, 0.0)


def test_backoff_resets_after_a_healthy_connection() -> None:
    b = Backoff(0.5, 2.0, 30.0, 1.0, rng=random.Random(3))
    delays = [b.next_delay() for _ in range(6)]
    assert all(0 <= d <= min(30.0, 0.5 * 2**i) for i, d in enumerate(delays))
    assert b.attempt == 6
    b.reset()
    assert b.attempt == 0 and b.next_delay() <= 0.5


def test_rotation_at_age_limit_or_earlier_quiet_time() -> None:
    opened = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    now = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    assert next_rotation_delay_s(opened, now, 23 * 3600, "") == 22 * 3600
    assert next_rotation_delay_s(opened, now, 23 * 3600, "03:30") == (16 * 60 + 30) * 60  # 03:30 next day
    late = datetime(2026, 5, 1, 4, 0, tzinfo=UTC)  # opened after today's 03:30: the age limit comes first
    assert next_rotation_delay_s(late, late, 23 * 3600, "03:30") == 23 * 3600
    with pytest.raises(ValueError):
        LiveSettings(rotate_at_utc="25:00")


def test_at_most_1024_streams_per_connection() -> None:
    symbols = [f"binance-spot.S{i:04d}USDT" for i in range(1500)]
    cfg = LiveSettings(instruments=symbols, status_streams=["kline_1m"])
    plans = plan_connections(subscriptions(cfg), cfg)
    assert [len(p.streams) for p in plans] == [1024, 1024, 952]
    assert len({s.name for p in plans for s in p.streams}) == 3000


def test_bad_instruments_are_config_errors() -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError):
        subscriptions(LiveSettings(instruments=["sim.BTCUSDT"]))
    with pytest.raises(ValueError):
        LiveSettings(default_stream_kind="depth")


def test_dump_paths_checksums_and_periods() -> None:
    assert DumpFile("um", "daily", "klines", "XRPUSDT", "2022-10-01").path == \
        "data/futures/um/daily/klines/XRPUSDT/1m/XRPUSDT-1m-2022-10-01.zip"  # DOMAIN_NOTES 4.6 example
    assert DumpFile("spot", "monthly", "klines", "BNBUSDT", "2019-01").path == \
        "data/spot/monthly/klines/BNBUSDT/1m/BNBUSDT-1m-2019-01.zip"
    digest = "ab" * 32
    assert parse_checksum(f"{digest}  X-1m-2019-01.zip\n", "X-1m-2019-01.zip") == digest
    with pytest.raises(InvalidInput):
        parse_checksum("garbage", "X.zip")
    assert periods("monthly", datetime(2023, 11, 5).date(), datetime(2024, 2, 1).date()) == \
        ["2023-11", "2023-12", "2024-01", "2024-02"]
    with pytest.raises(InvalidInput):
        periods("daily", datetime(2024, 2, 2).date(), datetime(2024, 2, 1).date())
