"""Helpers for pipeline tests: read back stored rows, run workers in-process or as processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg

from services.analytics.settings import AnalyticsSettings
from services.analytics.worker import AnalyticsWorker
from shared.config import CommonSettings
from shared.instruments import Pair

REPO = Path(__file__).resolve().parents[2]
METRIC_VALUE_COLUMNS = [
    "pair", "timeframe", "ts", "seq", "method", "window", "y_price", "x_price", "warm", "beta", "alpha", "r2",
    "spread", "zscore", "correlation", "adf_stat", "adf_p", "half_life",
]  # fmt: skip  (computed_at is processing metadata, not a value)


def stored_bars(conn: psycopg.Connection, instrument: str, tf: str) -> pd.DataFrame:
    rows = conn.execute(
        "SELECT ts, open, high, low, close, volume, trades FROM bars WHERE instrument = %s AND timeframe = %s ORDER BY ts",
        (instrument, tf),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume", "trades"])
    return frame.set_index(pd.to_datetime(frame.pop("ts"), utc=True))


def stored_metrics(conn: psycopg.Connection, pair: str, tf: str) -> pd.DataFrame:
    rows = conn.execute(
        "SELECT " + ", ".join(f'"{c}"' for c in METRIC_VALUE_COLUMNS) + " FROM pair_metrics "
        "WHERE pair = %s AND timeframe = %s ORDER BY ts, seq",
        (pair, tf),
    ).fetchall()
    return pd.DataFrame(rows, columns=METRIC_VALUE_COLUMNS)


def table_snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every stored value row (bars, metrics without compute time, ticks), sorted by key."""
    cols = ", ".join(f'"{c}"' for c in METRIC_VALUE_COLUMNS)
    return {
        "bars": conn.execute("SELECT * FROM bars ORDER BY instrument, timeframe, ts").fetchall(),
        "metrics": conn.execute(f"SELECT {cols} FROM pair_metrics ORDER BY pair, timeframe, ts, seq").fetchall(),
        "ticks": conn.execute("SELECT * FROM ticks ORDER BY instrument, trade_id").fetchall(),
    }


def analytics_settings(settings: CommonSettings, **overrides) -> AnalyticsSettings:
    base = dict(
        REDIS_URL=settings.redis_dsn,
        DATABASE_URL=settings.database_dsn,
        PAIRS_KEY_PREFIX=settings.key_prefix,
        LOG_JSON=False,
        block_ms=20,
    )
    base.update(overrides)
    return AnalyticsSettings(**base)


def run_worker_until_idle(settings: AnalyticsSettings, pairs: list[Pair]) -> AnalyticsWorker:
    worker = AnalyticsWorker(settings, pairs=pairs)
    try:
        worker.run_until_idle(idle_rounds=5)
    finally:
        worker.close()
    return worker


def worker_env(settings: CommonSettings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=settings.redis_dsn,
        DATABASE_URL=settings.database_dsn,
        PAIRS_KEY_PREFIX=settings.key_prefix,
        LOG_JSON="false",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def start_worker_process(settings: CommonSettings, pairs: list[Pair], instance: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.analytics", "--pairs", ",".join(p.id for p in pairs), "--instance", instance],
        cwd=REPO,
        env=worker_env(settings, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def assert_same_rows(actual: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> None:
    """Table snapshots equal; otherwise name the table, the first differing row and its columns."""
    for table in expected:
        got, want = actual[table], expected[table]
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            if a != b:
                cols = [j for j, (u, v) in enumerate(zip(a, b, strict=False)) if u != v]
                raise AssertionError(f"{table}: row {i} differs in columns {cols}:\n  got  {a}\n  want {b}")
        assert len(got) == len(want), f"{table}: {len(got)} rows, expected {len(want)}"
