"""Independent references for the pipeline tests: pandas resampling and the batch pair signal.

Bars: pandas ``resample`` (left-closed, left-labelled UTC buckets) of the trades, empty buckets
dropped. Volume: the exact decimal sum of the quantities (``Decimal``), which is what the worker
stores; pandas' float sum is also compared, within 1e-12 relative (its own rounding).
Pair observations: the legs' bar closes on the union of their bucket starts, forward-filled,
from the first bucket where both have traded.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from shared.analytics.window_metrics import batch_pair_signal
from shared.messages import Tick

PANDAS_RULE = {"1s": "1s", "1m": "1min", "5m": "5min"}


def ticks_frame(ticks: list[Tick]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument": [t.instrument for t in ticks],
            "ts": pd.to_datetime([t.ts_event_us for t in ticks], unit="us", utc=True),
            "price": [t.price for t in ticks],
            "qty": [t.qty for t in ticks],
            "qty_dec": [Decimal(repr(t.qty)) for t in ticks],
        }
    )


def reference_bars(frame: pd.DataFrame, instrument: str, tf: str) -> pd.DataFrame:
    df = frame[frame.instrument == instrument].set_index("ts")
    rs = df.resample(PANDAS_RULE[tf], label="left", closed="left")
    out = pd.DataFrame(
        {
            "open": rs.price.first(),
            "high": rs.price.max(),
            "low": rs.price.min(),
            "close": rs.price.last(),
            "volume_pandas": rs.qty.sum(),
            "trades": rs.price.count(),
        }
    )
    exact = df.groupby(df.index.floor(PANDAS_RULE[tf])).qty_dec.sum().map(float)
    out = out[out.trades > 0].copy()
    out["volume"] = exact.reindex(out.index)
    return out


def reference_pair_series(bars_y: pd.DataFrame, bars_x: pd.DataFrame) -> pd.DataFrame:
    idx = bars_y.index.union(bars_x.index)
    both = pd.DataFrame({"y": bars_y.close.reindex(idx), "x": bars_x.close.reindex(idx)}).ffill().dropna()
    return both


def reference_metrics(pair_series: pd.DataFrame, window: int) -> pd.DataFrame:
    sig = batch_pair_signal(pair_series.y.to_numpy(), pair_series.x.to_numpy(), window)
    sig.index = pair_series.index
    return sig


def assert_close_or_both_nan(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float, what: str) -> None:
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: {actual.shape} vs {expected.shape}"
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert (nan_a == nan_e).all(), f"{what}: NaN pattern differs at {np.flatnonzero(nan_a != nan_e)[:5]}"
    np.testing.assert_allclose(actual[~nan_a], expected[~nan_e], rtol=rtol, atol=atol, err_msg=what)
