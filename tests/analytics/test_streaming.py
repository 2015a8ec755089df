"""Streaming classes (rolling.py, KalmanHedge) against the batch functions, exact arithmetic and
their own checkpoints.

- Streaming vs batch: the batch functions recompute each window two-pass; the streaming classes
  use Welford add/remove with an exact resync every ``window`` updates. Stated tolerances below.
- Stability: at BTC scale (x ~ 1e5, window sd ~ 0.05) over many updates, the window statistics
  are compared with an exact ``fractions.Fraction`` computation of the last window; a naive
  raw-sum (sum x, sum x^2) implementation run on the same stream is shown to fail there.
- Checkpoints: get_state -> strict JSON -> set_state continues bit-for-bit.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from shared.analytics.hedge import rolling_ols
from shared.analytics.kalman import KalmanHedge, kalman_hedge
from shared.analytics.rolling import (
    RollingCorrelation,
    RollingMoments1,
    RollingMoments2,
    RollingOLS,
    RollingZScore,
)
from shared.analytics.series import rolling_correlation, rolling_zscore
from shared.errors import InvalidInput
from tests.analytics.test_hedge import load_klines


def _btc_scale(n: int, seed: int = 9) -> tuple[list[float], list[float]]:
    """x ~ 1e5 on a 0.01 tick with a window sd ~ 0.05 (a quiet BTC book); y ~ 3e3 tied to x."""
    rng = np.random.default_rng(seed)
    x = np.round(1e5 + rng.normal(0.0, 0.05, n), 2)
    y = np.round(3000.0 + 0.03 * (x - 1e5) + rng.normal(0.0, 0.002, n), 3)
    return x.tolist(), y.tolist()


def _stream_pairs(cls, window, xs, ys):
    f = cls(window)
    return np.array([f.update(a, b) for a, b in zip(xs, ys, strict=True)], dtype=float)


# --- streaming vs batch ----------------------------------------------------------------------


# Windows of >= 10 points: for tiny windows Sxx can be ~1e-6 of x^2 and beta's rounding error
# (~eps * x^2 / Sxx) exceeds the fixed tolerance in both implementations alike.
@pytest.mark.parametrize("window", [10, 50, 300])
def test_rolling_classes_match_batch_functions(window) -> None:
    rng = np.random.default_rng(1)
    x = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 1500))
    y = 5.0 + 1.3 * x + rng.normal(0.0, 1.0, 1500)
    ols_s = _stream_pairs(RollingOLS, window, x.tolist(), y.tolist())
    batch = rolling_ols(y, x, window)
    # Welford add/remove + resync every window vs two-pass per window: ~1e-13 at price ~100;
    # rtol 1e-9. Streaming outputs exist from the 2nd update; batch from the first full window.
    full = slice(window - 1, None)
    np.testing.assert_allclose(ols_s[full, 0], batch.beta[full], rtol=1e-9)
    np.testing.assert_allclose(ols_s[full, 1], batch.alpha[full], rtol=1e-9)
    np.testing.assert_allclose(ols_s[full, 2], batch.r2[full], rtol=1e-9, atol=1e-12)
    corr_s = _stream_pairs(RollingCorrelation, window, x.tolist(), y.tolist())
    np.testing.assert_allclose(corr_s[full], rolling_correlation(y, x, window)[full], rtol=1e-9, atol=1e-12)
    z = RollingZScore(window)
    z_s = np.array([z.update(v) for v in (y - 1.3 * x).tolist()])
    np.testing.assert_allclose(z_s[full], rolling_zscore(y - 1.3 * x, window)[full], rtol=1e-9, atol=1e-9)


@pytest.mark.real_data
def test_rolling_classes_match_batch_on_klines(data_dir: Path) -> None:
    k = load_klines(data_dir)
    x, y = k["close_x"].to_numpy(), k["close_y"].to_numpy()
    for window in (300, 3000):
        ols_s = _stream_pairs(RollingOLS, window, x.tolist(), y.tolist())
        batch = rolling_ols(y, x, window)
        full = slice(window - 1, None)
        # BTC-scale x: centered sums stay exact to rounding in both; measured ~1e-11 relative.
        np.testing.assert_allclose(ols_s[full, 0], batch.beta[full], rtol=1e-8, atol=1e-12)  # beta ~ 0 at times
        np.testing.assert_allclose(ols_s[full, 2], batch.r2[full], rtol=1e-8, atol=1e-12)  # r2 ~ 0 at times
        s = (y - 0.05 * x).tolist()
        z = RollingZScore(window)
        z_s = np.array([z.update(v) for v in s])
        np.testing.assert_allclose(z_s[full], rolling_zscore(s, window)[full], rtol=0, atol=1e-8)
    # Kalman: the batch function runs the class, so it is bit-for-bit.
    f = KalmanHedge(delta=1e-9, warmup=100)
    steps = np.array([f.update(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)])
    np.testing.assert_array_equal(steps[:, 0], kalman_hedge(y, x, delta=1e-9, warmup=100).beta)


# --- stability at BTC scale ------------------------------------------------------------------


class NaiveRawSums:
    """The formula we do *not* use: running sum x, sum x^2 with add/remove, var = (Sxx - Sx^2/n)."""

    def __init__(self, window: int) -> None:
        self.window, self.buf, self.sx, self.sxx = window, [], 0.0, 0.0

    def update(self, x: float) -> None:
        self.buf.append(x)
        self.sx += x
        self.sxx += x * x
        if len(self.buf) > self.window:
            old = self.buf.pop(0)
            self.sx -= old
            self.sxx -= old * old

    def m2(self) -> float:
        return self.sxx - self.sx * self.sx / len(self.buf)


def _exact_window(xs, ys):
    """Exact centered co-moments of the window with rational arithmetic (the oracle)."""
    fx, fy = [Fraction(v) for v in xs], [Fraction(v) for v in ys]
    n = len(fx)
    mx, my = sum(fx) / n, sum(fy) / n
    cxx = sum((a - mx) ** 2 for a in fx)
    cyy = sum((b - my) ** 2 for b in fy)
    cxy = sum((a - mx) * (b - my) for a, b in zip(fx, fy, strict=True))
    return mx, my, cxx, cyy, cxy


def _check_stability(n_updates: int, window: int) -> None:
    xs, ys = _btc_scale(n_updates)
    m1, m2, naive = RollingMoments1(window), RollingMoments2(window), NaiveRawSums(window)
    z = RollingZScore(window)
    for a, b in zip(xs, ys, strict=True):
        m1.update(a)
        m2.update(a, b)
        naive.update(a)
        last_z = z.update(a)
    # n_updates is chosen so the last resync was window - 1 updates ago: the worst point.
    assert m2.get_state()["since"] == window - 1
    mx, my, cxx, cyy, cxy = _exact_window(xs[-window:], ys[-window:])
    # Ours: within 1e-9 relative of the exact rational value (typically ~1e-13).
    # Means drift by ~1 ulp(1e5) per update between resyncs: allow 1e-13 relative (1e-8 absolute).
    assert float(mx) == pytest.approx(m2.mx, rel=1e-13) and float(my) == pytest.approx(m2.my, rel=1e-13)
    for got, exact in ((m2.cxx, cxx), (m2.cyy, cyy), (m2.cxy, cxy), (m1.m2, cxx)):
        assert abs(got - float(exact)) <= 1e-9 * abs(float(exact))
    sd = math.sqrt(float(cxx) / (window - 1))
    z_exact = (xs[-1] - float(mx)) / sd
    # z's error is the mean's drift (<= window * ulp(1e5) ~ 4e-9 at w=300) over the window sd
    # (~0.05): up to ~1e-7 relative in the worst case.
    assert last_z == pytest.approx(z_exact, rel=1e-7)
    # Naive raw sums on the same stream: at least 0.1% off (here typically 10-100%).
    assert abs(naive.m2() - float(cxx)) > 1e-3 * float(cxx)


def test_btc_scale_stability_vs_exact_fraction_and_naive_sums() -> None:
    _check_stability(n_updates=300 * 400 + 299, window=300)  # ~120k updates


@pytest.mark.slow
def test_btc_scale_stability_over_two_million_updates() -> None:
    _check_stability(n_updates=3000 * 667 + 2999, window=3000)  # ~2.0M updates


# --- checkpoints -----------------------------------------------------------------------------


def _json_round_trip(state: dict) -> dict:
    return json.loads(json.dumps(state, allow_nan=False))  # strict JSON, as stored in jsonb


@pytest.mark.parametrize("cls", [RollingOLS, RollingCorrelation, RollingMoments2, KalmanHedge])
@pytest.mark.parametrize("cut", [3, 57, 60, 199])  # before warm, at a resync (w=30), mid-window
def test_pair_state_round_trip_continues_bit_for_bit(cls, cut) -> None:
    xs, ys = _btc_scale(400, seed=3)
    make = (lambda: KalmanHedge(delta=1e-8, warmup=30)) if cls is KalmanHedge else (lambda: cls(30))
    ref, first = make(), make()
    expected = [ref.update(a, b) for a, b in zip(xs, ys, strict=True)]
    got = [first.update(a, b) for a, b in zip(xs[:cut], ys[:cut], strict=True)]
    second = make() if cls is KalmanHedge else cls(7)  # different window: set_state restores it
    second.set_state(_json_round_trip(first.get_state()))
    got += [second.update(a, b) for a, b in zip(xs[cut:], ys[cut:], strict=True)]
    np.testing.assert_array_equal(np.array(got, dtype=float), np.array(expected, dtype=float))
    assert second.get_state() == ref.get_state()


@pytest.mark.parametrize("cls", [RollingZScore, RollingMoments1])
def test_single_series_state_round_trip_continues_bit_for_bit(cls) -> None:
    xs, _ = _btc_scale(200, seed=4)
    ref, first = cls(25), cls(25)
    expected = [ref.update(a) for a in xs]
    got = [first.update(a) for a in xs[:74]]  # 74: just before the 3rd resync
    second = cls(2)
    second.set_state(_json_round_trip(first.get_state()))
    got += [second.update(a) for a in xs[74:]]
    np.testing.assert_array_equal(np.array(got, dtype=float), np.array(expected, dtype=float))
    assert second.get_state() == ref.get_state()


def test_streaming_edge_cases() -> None:
    o = RollingOLS(5)
    for _ in range(6):
        beta, alpha, r2 = o.update(100.0, 50.0)
    assert math.isnan(beta) and math.isnan(r2) and o.warm  # constant x: slope undefined -> NaN
    exact = RollingOLS(10)
    for i in range(12):
        beta, alpha, r2 = exact.update(1e5 + i, 2.0 * (1e5 + i))
    assert beta == pytest.approx(2.0, rel=1e-12) and r2 == pytest.approx(1.0, rel=1e-12)
    z = RollingZScore(4)
    assert all(math.isnan(z.update(7.0)) for _ in range(6))  # zero std -> NaN, not inf
    with pytest.raises(InvalidInput, match="non-finite input nan"):
        RollingCorrelation(5).update(1.0, float("nan"))
    with pytest.raises(InvalidInput, match="window must be an integer >= 2"):
        RollingZScore(1)
