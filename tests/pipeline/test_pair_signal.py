"""PairSignalStream for every hedge method against independent batch computations.

Oracles: numpy window algebra for OLS (see window_metrics), the library fits applied to the same
window for Huber / Theil-Sen (checks the windowing and the spread/z formulas), the batch Kalman
filter for Kalman, statsmodels ``adfuller`` for the ADF statistic and p-value, and a statsmodels OLS
of the spread's differences on its lag for the half-life.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import adfuller

from shared.analytics import hedge
from shared.analytics.kalman import kalman_hedge
from shared.analytics.pair_stream import PairSignalStream
from shared.analytics.window_metrics import batch_pair_signal

W = 40


@pytest.fixture(scope="module")
def prices():
    rng = np.random.default_rng(12)
    n = 160
    x = 60_000 + np.cumsum(rng.normal(0, 20, n))
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.8 * s[i - 1] + rng.normal(0, 2)
    y = 100 + 0.05 * x + s
    return y, x


def run(y, x, method, tests=True):
    stream = PairSignalStream(W, method)
    return stream, [stream.update(a, b, tests=tests) for a, b in zip(y, x, strict=True)]


def statsmodels_half_life(spread: np.ndarray) -> float:
    fit = sm.OLS(np.diff(spread), sm.add_constant(spread[:-1])).fit()
    b = fit.params[1]
    return -math.log(2) / math.log(1 + b) if -1 < b < 0 else math.inf


def test_ols_fields_and_tests_match_references(prices):
    y, x = prices
    _, sigs = run(y, x, "ols")
    ref = batch_pair_signal(y, x, W)
    for t in range(W - 1, len(y)):
        sig = sigs[t]
        assert sig.beta == pytest.approx(ref.beta[t], rel=1e-9)  # rtol 1e-9: streaming vs two-pass
        assert sig.zscore == pytest.approx(ref.zscore[t], rel=1e-8, abs=1e-9)
        window_spread = y[t - W + 1 : t + 1] - sig.beta * x[t - W + 1 : t + 1]
        stat, p, *_ = adfuller(window_spread, regression="c", autolag="AIC")
        assert sig.adf_stat == pytest.approx(stat, rel=1e-6)  # 1e-6: beta's 1e-9 propagated into the spread
        assert sig.adf_p == pytest.approx(p, abs=1e-6)
        hl = statsmodels_half_life(window_spread)
        assert (sig.half_life is None and not math.isfinite(hl)) or sig.half_life == pytest.approx(hl, rel=1e-6)
    assert all(not s.warm and s.beta is None for s in sigs[: W - 1])


@pytest.mark.parametrize("method", ["huber", "theil_sen"])
def test_robust_methods_refit_the_window(prices, method):
    y, x = prices
    _, sigs = run(y, x, method, tests=False)
    fit_fn = hedge.huber if method == "huber" else hedge.theil_sen
    for t in (W - 1, W + 17, len(y) - 1):
        ys, xs = y[t - W + 1 : t + 1], x[t - W + 1 : t + 1]
        fit = fit_fn(ys, xs)
        spread = ys - fit.beta * xs
        assert sigs[t].beta == fit.beta and sigs[t].alpha == fit.alpha
        assert sigs[t].spread == pytest.approx(spread[-1], rel=1e-12)
        assert sigs[t].zscore == pytest.approx((spread[-1] - spread.mean()) / spread.std(ddof=1), rel=1e-9)
    # Robust fits recover the planted hedge ratio 0.05 (noise is small relative to x's range).
    assert sigs[-1].beta == pytest.approx(0.05, rel=0.2)


def test_kalman_matches_the_batch_filter(prices):
    y, x = prices
    _, sigs = run(y, x, "kalman", tests=False)
    ref = kalman_hedge(y, x, delta=1e-9, warmup=W)
    for t, sig in enumerate(sigs):
        if math.isnan(ref.beta[t]):
            assert not sig.warm
            continue
        assert sig.beta == ref.beta[t] and sig.alpha == ref.alpha[t]  # the same arithmetic
        assert sig.zscore == pytest.approx(ref.spread[t] / math.sqrt(ref.spread_var[t]), rel=1e-12)


@pytest.mark.parametrize("method", ["ols", "kalman", "huber", "theil_sen"])
def test_state_round_trip_is_bit_for_bit(prices, method):
    y, x = prices
    _, whole = run(y, x, method)
    cut = 70
    first, _ = run(y[:cut], x[:cut], method)
    restored = PairSignalStream.from_state(msgspec.json.decode(msgspec.json.encode(first.get_state())))
    rest = [restored.update(a, b, tests=True) for a, b in zip(y[cut:], x[cut:], strict=True)]
    assert rest == whole[cut:]
