"""The real spot BTCUSDT/ETHUSDT trades (../shared/data) through `pairs ingest --replay` -> Redis ->
analytics worker -> PostgreSQL: bars equal a pandas resample of the same files, metrics equal the
batch reference on those bars, and a second pass leaves identical rows."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from shared.instruments import Pair
from tests.pipeline.helpers import (
    REPO,
    analytics_settings,
    run_worker_until_idle,
    stored_bars,
    stored_metrics,
    table_snapshot,  # fmt: skip
    worker_env,
)
from tests.pipeline.reference import (
    PANDAS_RULE,
    assert_close_or_both_nan,
    reference_metrics,
    reference_pair_series,
)

PAIR = Pair.parse("binance-spot.ETHUSDT~binance-spot.BTCUSDT")
WINDOW = 60
pytestmark = pytest.mark.real_data


def files(data_dir):
    trades = data_dir / "binance" / "trades"
    return {
        "binance-spot.BTCUSDT": trades / "spot_BTCUSDT_trades_20240808T235415Z_20240809T000505Z.csv.gz",
        "binance-spot.ETHUSDT": trades / "spot_ETHUSDT_trades_20240808T235415Z_20240809T000505Z.csv.gz",
    }


def pandas_bars(path, tf: str) -> pd.DataFrame:
    """The reference: pandas reads the file itself (strings for exact decimals) and resamples by T."""
    df = pd.read_csv(path, dtype={"p": str, "q": str})
    df["price"] = df.p.astype(float)
    df["ts"] = pd.to_datetime(df["T"], unit="ms", utc=True)
    df = df.set_index("ts")
    rs = df.resample(PANDAS_RULE[tf], label="left", closed="left")
    out = pd.DataFrame({"open": rs.price.first(), "high": rs.price.max(), "low": rs.price.min(),
                        "close": rs.price.last(), "trades": rs.price.count()})  # fmt: skip
    out = out[out.trades > 0]
    exact = df.groupby(df.index.floor(PANDAS_RULE[tf])).q.apply(lambda qs: float(sum(map(Decimal, qs))))
    out["volume"] = exact.reindex(out.index)
    return out


@pytest.fixture
def replayed(settings, redis_client, db, data_dir):
    paths = files(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "ingest", "--replay", *map(str, paths.values()),
         "--speed", "max", "--no-progress"],
        cwd=REPO, env=worker_env(settings), capture_output=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    cfg = analytics_settings(settings, window=WINDOW, timeframes=["1s", "1m", "5m"])
    run_worker_until_idle(cfg, [PAIR])
    return paths, cfg


def test_real_trades_bars_and_metrics_match_pandas_and_batch(replayed, db):
    paths, _ = replayed
    refs = {}
    for tf in ("1s", "1m", "5m"):
        for inst, path in paths.items():
            ours = stored_bars(db, inst, tf)
            ref = pandas_bars(path, tf)
            refs[(inst, tf)] = ref
            # Every bucket up to the last closed one, none missing; the final bucket may still be open.
            assert len(ours) >= len(ref) - 1
            ref = ref.iloc[: len(ours)]
            assert list(ours.index) == list(ref.index)
            for col in ("open", "high", "low", "close", "volume", "trades"):
                assert (ours[col].to_numpy() == ref[col].to_numpy()).all(), f"{inst} {tf} {col}"
    for tf in ("1s", "1m"):
        mets = stored_metrics(db, PAIR.id, tf)
        series = reference_pair_series(refs[(PAIR.y.id, tf)], refs[(PAIR.x.id, tf)]).iloc[: len(mets)]
        ref = reference_metrics(series, min(WINDOW, max(3, len(series) - 1)) if tf == "1m" else WINDOW)
        if tf == "1m":
            continue  # 10 one-minute bars: too few for a 60-bar window (all None), checked in 1s instead
        assert np.array_equal(mets.y_price.to_numpy(), series.y.to_numpy())
        # Tolerances: streaming Welford/resync vs two-pass numpy (see tests/pipeline/test_engine.py).
        for field, rtol in {"beta": 1e-9, "zscore": 1e-8, "correlation": 1e-9, "spread": 1e-7, "r2": 1e-9}.items():
            assert_close_or_both_nan(mets[field].to_numpy(dtype=float), ref[field].to_numpy(), rtol, 1e-9, field)
        assert mets.warm.sum() > 500


def test_real_replay_processed_twice_leaves_identical_rows(replayed, settings, redis_client, db):
    _, cfg = replayed
    first = table_snapshot(db)
    for leg in PAIR.legs:
        redis_client.xgroup_destroy(settings.keys.ticks(leg.id), f"analytics:{PAIR.id}")
    db.execute("DELETE FROM pair_state")
    run_worker_until_idle(cfg, [PAIR])
    second = table_snapshot(db)
    assert second == first
    # 34 419 trades in the two files, each stored exactly once. Both legs are spot (one connection, no
    # merge grace): BTC's trades after ETH's last one (00:05:05.012) are released once ETH's stream is drained.
    keys = [(r[0], r[2]) for r in first["ticks"]]
    assert len(keys) == len(set(keys)) == 34_419
