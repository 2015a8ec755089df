"""Series helpers against pandas / scipy / numpy formulas (oracle and tolerance next to each check)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shared.analytics.series import (
    correlation_matrix,
    describe,
    log_returns,
    rolling_correlation,
    rolling_zscore,
    spread,
)
from shared.errors import InvalidInput
from tests.analytics.test_hedge import load_klines


@pytest.fixture(scope="module")
def klines(data_dir: Path) -> pd.DataFrame:
    return load_klines(data_dir)


def _prices(n=500, seed=4, level=100.0):
    rng = np.random.default_rng(seed)
    return level * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))


def test_spread_with_scalar_and_path_hedge() -> None:
    y, x = _prices(seed=1), _prices(seed=2)
    np.testing.assert_array_equal(spread(y, x, 1.5, 2.0), y - 2.0 - 1.5 * x)  # textbook, exact
    beta = np.full(len(y), 1.5)
    beta[:3] = np.nan  # a warming-up hedge path
    s = spread(pd.Series(y), list(x), beta)
    assert np.isnan(s[:3]).all()
    np.testing.assert_array_equal(s[3:], y[3:] - 1.5 * x[3:])


def test_spread_errors() -> None:
    with pytest.raises(InvalidInput, match="equal lengths, got 3 and 2"):
        spread([1.0, 2.0, 3.0], [1.0, 2.0], 1.0)
    with pytest.raises(InvalidInput, match="beta must have the length of the prices, got 2 and 3"):
        spread([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InvalidInput, match="beta must be finite"):
        spread([1.0, 2.0], [1.0, 2.0], math.inf)


@pytest.mark.parametrize("window", [2, 20, 300])
def test_rolling_zscore_matches_pandas_rolling(window) -> None:
    s = pd.Series(_prices(n=800) - 100.0)
    z = rolling_zscore(s, window)
    roll = s.rolling(window)
    ref = (s - roll.mean()) / roll.std(ddof=1)
    # pandas rolling mean/std (online, Kahan-compensated) vs our two-pass: ~1e-12; allow 1e-9.
    np.testing.assert_allclose(z, ref.to_numpy(), rtol=1e-9, atol=1e-9)
    assert np.isnan(z[: window - 1]).all()


@pytest.mark.real_data
def test_rolling_zscore_and_correlation_on_klines(klines) -> None:
    y, x = klines["close_y"], klines["close_x"]
    s = y - 0.05 * x  # a BTC-scale spread (~-2e3 level, small variance)
    for w in (300, 3000):
        roll = s.rolling(w)
        ref = ((s - roll.mean()) / roll.std()).to_numpy()
        # pandas keeps ~10 digits at this level (measured ~4e-10 absolute on z); atol 1e-7.
        np.testing.assert_allclose(rolling_zscore(s, w), ref, rtol=0, atol=1e-7)
        rc = x.rolling(w).corr(y).to_numpy()
        np.testing.assert_allclose(rolling_correlation(y, x, w), rc, rtol=0, atol=1e-7)


def test_rolling_zscore_constant_window_and_nan_propagation() -> None:
    s = np.r_[np.arange(10.0), np.full(10, 5.0), np.arange(10.0)]
    z = rolling_zscore(s, 5)
    assert np.isnan(z[14:20]).all()  # windows entirely inside the constant stretch: std 0 -> NaN
    assert np.isfinite(z[13]) and np.isfinite(z[20])
    s2 = np.arange(30.0)
    s2[12] = np.nan
    z2 = rolling_zscore(s2, 5)
    assert np.isnan(z2[12:17]).all() and np.isfinite(z2[17])


def test_collinear_legs_give_zero_spread_and_nan_zscore() -> None:
    # y = 2x exactly: OLS beta 2, residual std 0, so the spread is identically 0 and its z-score
    # (0 / std 0) is undefined: NaN everywhere, never inf or a division error.
    from shared.analytics.hedge import ols

    x = np.linspace(1e5, 1.01e5, 100)
    fit = ols(2.0 * x, x)
    s = spread(2.0 * x, x, fit.beta, fit.alpha)
    assert fit.beta == 2.0 and fit.resid_std == 0.0 and not s.any()
    assert np.isnan(rolling_zscore(s, 20)).all()
    np.testing.assert_allclose(rolling_correlation(2.0 * x, x, 20)[19:], 1.0, rtol=1e-12)


def test_nullable_pandas_input_reports_missing_value_position() -> None:
    y = pd.Series([1.0, None, 3.0, 4.0], dtype="Float64")  # pd.NA at position 1
    with pytest.raises(InvalidInput, match="y contains NaN at position 1"):
        spread(y, np.arange(4.0), 1.0)


def test_rolling_correlation_matches_numpy_corrcoef_per_window() -> None:
    a, b = _prices(n=120, seed=5), _prices(n=120, seed=6)
    r = rolling_correlation(a, b, 40)
    for end in (39, 80, 119):
        sl = slice(end - 39, end + 1)
        assert r[end] == pytest.approx(np.corrcoef(a[sl], b[sl])[0, 1], rel=1e-10)  # numpy corrcoef
    const = rolling_correlation(np.ones(50), b[:50], 10)
    assert np.isnan(const).all()
    with pytest.raises(InvalidInput, match="a and b must have equal lengths, got 3 and 2"):
        rolling_correlation([1.0, 2.0, 3.0], [1.0, 2.0], 2)
    with pytest.raises(InvalidInput, match="window 60 is longer than the series"):
        rolling_correlation(a[:50], b[:50], 60)


def test_log_returns() -> None:
    p = _prices()
    # Oracle: log of the exact-ratio division; the log1p form differs by rounding only (~1e-12).
    np.testing.assert_allclose(log_returns(p), np.log(p[1:] / p[:-1]), rtol=1e-10, atol=1e-16)
    with pytest.raises(InvalidInput, match=r"prices must be > 0 for log returns, got 0.0 at position 2"):
        log_returns([1.0, 2.0, 0.0])
    with pytest.raises(InvalidInput, match="at least 2 points, got 1"):
        log_returns([1.0])


@pytest.mark.parametrize("interval", ["1m", 60.0])
def test_describe_matches_pandas_and_scipy(interval) -> None:
    p = _prices(n=1000)
    d = describe(p, interval)
    s = pd.Series(p)
    r = np.log(s).diff().dropna()
    per_year = 365 * 24 * 60  # 1-minute bars, 24/7
    # pandas descriptive statistics; sums of 1e3 numbers agree to ~1e-13, allow 1e-10.
    np.testing.assert_allclose(
        [d.mean, d.std, d.min, d.max, d.last], [s.mean(), s.std(), s.min(), s.max(), s.iloc[-1]], rtol=1e-10
    )
    assert d.count == 1000 and d.bar_seconds == 60.0
    assert d.total_return == pytest.approx(p[-1] / p[0] - 1, rel=1e-12)
    assert d.annualized_volatility == pytest.approx(r.std() * math.sqrt(per_year), rel=1e-9)
    assert d.annualized_return == pytest.approx(math.exp(r.mean() * per_year) - 1, rel=1e-9)
    # Bias-corrected sample skew / excess kurtosis: pandas Series.skew/kurt and scipy (bias=False).
    assert d.skew == pytest.approx(r.skew(), rel=1e-8)
    assert d.kurtosis == pytest.approx(r.kurt(), rel=1e-8)
    assert d.skew == pytest.approx(stats.skew(r, bias=False), rel=1e-8)
    assert d.kurtosis == pytest.approx(stats.kurtosis(r, bias=False), rel=1e-8)


def test_describe_degenerate_and_bad_input() -> None:
    d = describe([100.0, 100.0, 100.0, 100.0, 100.0], "1s")
    assert d.std == 0.0 and d.annualized_volatility == 0.0 and d.total_return == 0.0
    assert math.isnan(d.skew) and math.isnan(d.kurtosis)
    assert math.isnan(describe([1.0, 2.0, 3.0]).kurtosis)  # 2 returns: kurtosis undefined
    with pytest.raises(InvalidInput, match="unknown timeframe '7m'"):
        describe([1.0, 2.0], "7m")
    with pytest.raises(InvalidInput, match="bar_interval must be > 0"):
        describe([1.0, 2.0], 0.0)
    with pytest.raises(InvalidInput, match="'tick' has no fixed length"):
        describe([1.0, 2.0], "tick")
    with pytest.raises(InvalidInput, match="prices contains NaN at position 1"):
        describe([1.0, np.nan, 2.0])


@pytest.mark.real_data
def test_describe_on_btc_klines(klines) -> None:
    x = klines["close_x"]
    d = describe(x, "1m")
    r = np.log(x).diff().dropna()
    assert d.mean == pytest.approx(x.mean(), rel=1e-12) and d.std == pytest.approx(x.std(), rel=1e-9)
    assert d.annualized_volatility == pytest.approx(r.std() * math.sqrt(525_600), rel=1e-9)
    assert d.kurtosis == pytest.approx(r.kurt(), rel=1e-8)


@pytest.mark.parametrize(
    ("method", "oracle"),
    [
        ("pearson", lambda a, b: stats.pearsonr(a, b).statistic),
        ("spearman", lambda a, b: stats.spearmanr(a, b).statistic),
        ("kendall", lambda a, b: stats.kendalltau(a, b).statistic),
    ],
)
@pytest.mark.parametrize("on", ["returns", "prices"])
def test_correlation_matrix_matches_scipy(method, oracle, on) -> None:
    data = {"a": _prices(seed=1), "b": _prices(seed=2), "c": _prices(seed=3)}
    data["d"] = 0.5 * data["a"] + 0.5 * data["b"]
    m = correlation_matrix(pd.DataFrame(data), method=method, on=on)
    assert list(m.index) == list(m.columns) == ["a", "b", "c", "d"]
    for i in data:
        for j in data:
            u, v = (np.log(data[i][1:] / data[i][:-1]), np.log(data[j][1:] / data[j][:-1])) if on == "returns" else (data[i], data[j])
            # scipy.stats pearsonr / spearmanr / kendalltau (tau-b) on the same series: rtol 1e-9.
            assert m.loc[i, j] == pytest.approx(oracle(u, v), rel=1e-9, abs=1e-12)


@pytest.mark.real_data
def test_correlation_matrix_on_klines(klines) -> None:
    m = correlation_matrix({"BTC": klines["close_x"], "ETH": klines["close_y"]})
    rx, ry = np.log(klines["close_x"]).diff().dropna(), np.log(klines["close_y"]).diff().dropna()
    assert m.loc["BTC", "ETH"] == pytest.approx(stats.pearsonr(rx, ry).statistic, rel=1e-9)


def test_correlation_matrix_edge_cases() -> None:
    p = _prices(n=50)
    m = correlation_matrix({"a": p, "flat": np.full(50, 3.0), "b": p[::-1].copy()})
    assert m.loc["flat"].isna().all() and m["flat"].isna().all()
    assert m.loc["a", "a"] == 1.0
    with pytest.raises(InvalidInput, match="series 'a' and series 'b' must have equal lengths, got 50 and 49"):
        correlation_matrix({"a": p, "b": p[:49]})
    with pytest.raises(InvalidInput, match="unknown method 'cosine'"):
        correlation_matrix({"a": p}, method="cosine")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="unknown on 'levels'"):
        correlation_matrix({"a": p}, on="levels")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="at least one series"):
        correlation_matrix({})
    with pytest.raises(InvalidInput, match="returns of each series needs at least 3 points, got 2"):
        correlation_matrix({"a": [1.0, 2.0, 3.0]})
