"""ADF against the oracle ``statsmodels.tsa.stattools.adfuller`` (statsmodels 0.15) on the same inputs.

Tolerances (the values are recomputed by the oracle in each test, nothing is copied from our output):
- statistic: rtol 1e-8 with atol 1e-9 (the atol only matters for statistics near 0, where a
  relative error is meaningless; both implementations round at ~1e-12 there);
- chosen lag, nobs: exact; p-value: 1e-10 absolute; critical values: 1e-12 absolute;
- icbest (AIC/BIC value, or |t| for "t-stat"): rtol 1e-8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import adfuller

from shared.analytics.adf import adf, default_maxlag
from shared.errors import InvalidInput

REGRESSIONS = ("n", "c", "ct")
AUTOLAGS = ("AIC", "BIC", "t-stat", None)
KLINES = "binance/klines/usdm_{}_1m_{}.signalbot.csv.gz"
KLINE_SPANS = {"BTCUSDT": "20250606T2141Z_20250616T2140Z", "ETHUSDT": "20250607T0844Z_20250617T0843Z"}


def random_walk(n: int, seed: int, level: float = 100.0) -> np.ndarray:
    return level + np.cumsum(np.random.default_rng(seed).normal(size=n))


def ar1(n: int, phi: float, seed: int, mean: float = 0.0) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n)
    out = np.empty(n)
    out[0] = e[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + e[t]
    return out + mean


def trending(n: int, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(0.2, 1.0, size=n)) + 0.01 * np.arange(n)


SERIES = {
    "random_walk": lambda: random_walk(600, seed=1, level=60_000.0),
    "ar1_0.8": lambda: ar1(500, 0.8, seed=2, mean=3_000.0),
    "ar1_0.3_short": lambda: ar1(60, 0.3, seed=3),
    "trending": lambda: trending(400, seed=4),
}


def assert_same_as_adfuller(x: np.ndarray, regression: str, autolag: str | None, maxlag: int | None) -> None:
    ref = adfuller(x, maxlag=maxlag, regression=regression, autolag=autolag, result_object=True)
    got = adf(x, regression=regression, maxlag=maxlag, autolag=autolag)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.stat, ref.statistic, rtol=1e-8, atol=1e-9)
    assert got.used_lag == ref.lags
    assert got.nobs == ref.nobs
    assert abs(got.pvalue - ref.pvalue) <= 1e-10
    for key in ("1%", "5%", "10%"):
        assert abs(got.critical_values[key] - ref.critical_values[key]) <= 1e-12
    if autolag is None:
        assert got.icbest is None
    else:
        np.testing.assert_allclose(got.icbest, ref.icbest, rtol=1e-8)


@pytest.mark.parametrize("name", sorted(SERIES))
@pytest.mark.parametrize("regression", REGRESSIONS)
@pytest.mark.parametrize("autolag", AUTOLAGS)
def test_matches_adfuller_default_maxlag(name: str, regression: str, autolag: str | None) -> None:
    assert_same_as_adfuller(SERIES[name](), regression, autolag, None)


@pytest.mark.parametrize("regression", REGRESSIONS)
@pytest.mark.parametrize("maxlag", [0, 1, 7, 20])
@pytest.mark.parametrize("autolag", AUTOLAGS)
def test_matches_adfuller_explicit_maxlag(regression: str, maxlag: int, autolag: str | None) -> None:
    assert_same_as_adfuller(ar1(300, 0.95, seed=11, mean=50.0), regression, autolag, maxlag)


def test_autolag_is_case_insensitive_and_echoed() -> None:
    x = random_walk(300, seed=5)
    assert adf(x, autolag="aic").autolag == "AIC"  # type: ignore[arg-type]
    assert adf(x, autolag="bic").used_lag == adf(x, autolag="BIC").used_lag  # type: ignore[arg-type]


def test_pandas_input_equals_numpy_input() -> None:
    x = ar1(200, 0.5, seed=6)
    assert adf(pd.Series(x)).stat == adf(x).stat


def test_default_maxlag_is_schwert_rule() -> None:
    # 12 * (n/100)^(1/4), ceil (Schwert 1989): n=1000 -> ceil(21.34) = 22; capped at n//2 - ntrend - 1.
    assert default_maxlag(1000, "c") == 22
    assert default_maxlag(20, "ct") == 20 // 2 - 2 - 1


def test_stationary_series_rejects_unit_root_and_random_walk_does_not() -> None:
    assert adf(ar1(1000, 0.5, seed=7)).pvalue < 0.01
    assert adf(random_walk(1000, seed=8)).pvalue > 0.05


@pytest.mark.real_data
@pytest.mark.parametrize("symbol", sorted(KLINE_SPANS))
@pytest.mark.parametrize("regression", REGRESSIONS)
def test_matches_adfuller_on_real_klines(data_dir: Path, symbol: str, regression: str) -> None:
    path = data_dir / KLINES.format(symbol, KLINE_SPANS[symbol])
    close = pd.read_csv(path)["close"].to_numpy(dtype=float)[:3000]
    for autolag in ("AIC", "t-stat"):
        assert_same_as_adfuller(close, regression, autolag, None)
        assert_same_as_adfuller(np.log(close), regression, autolag, None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"series": [1.0, 2.0, 3.0]}, "at least"),
        ({"series": np.full(50, 3.0)}, "constant"),
        ({"series": [1.0, np.nan, *range(20)]}, "NaN at position 1"),
        ({"series": [1.0, np.inf, *range(20)]}, "inf at position 1"),
        ({"series": np.zeros((10, 2))}, "one-dimensional"),
        ({"series": ["a", "b"]}, "only numbers"),
        ({"series": np.arange(40.0), "regression": "ctt"}, "unknown regression"),
        ({"series": np.arange(40.0), "autolag": "hqic"}, "unknown autolag"),
        ({"series": np.arange(40.0), "maxlag": 19}, "maxlag=19 too large"),
        ({"series": np.arange(40.0), "maxlag": -1}, "non-negative integer"),
        ({"series": np.arange(40.0), "maxlag": 2.5}, "non-negative integer"),
    ],
)
def test_bad_input_gives_clear_error(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        adf(**kwargs)
