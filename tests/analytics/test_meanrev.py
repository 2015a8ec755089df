"""Half-life against statsmodels OLS / adfuller and textbook AR(1) facts; Hurst on processes of known type.

Oracles and tolerances:
- AR(1) fit ``ds = a + b s_{t-1}``: ``statsmodels OLS(ds, add_constant(s_lag))`` params, t-value and
  residual std, rtol 1e-9; p-value: ``adfuller(s, maxlag=0, autolag=None, regression="c")`` (the same
  Dickey-Fuller regression), 1e-10 absolute; half-life: the textbook ``-ln 2 / ln(1 + b)`` of the
  oracle's ``b``, rtol 1e-9.
- Hurst: a straight line has RMS differences exactly proportional to the lag, so h = 1 (1e-12);
  statistical cases use seeded series with tolerances from the estimator's sampling spread (see each test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import adfuller

from shared.analytics.meanrev import half_life, hurst
from shared.errors import InvalidInput


def ou(n: int, phi: float, seed: int, mean: float = 0.0, sigma: float = 1.0) -> np.ndarray:
    e = np.random.default_rng(seed).normal(0.0, sigma, size=n)
    out = np.empty(n)
    out[0] = 0.0
    for t in range(1, n):
        out[t] = phi * out[t - 1] + e[t]
    return out + mean


@pytest.mark.parametrize(("phi", "mean"), [(0.9, 0.0), (0.5, 250.0), (0.98, -3.0)])
def test_half_life_matches_ols_and_dickey_fuller(phi: float, mean: float) -> None:
    s = ou(2000, phi, seed=int(phi * 100), mean=mean)
    got = half_life(s)
    ols = sm.OLS(np.diff(s), sm.add_constant(s[:-1])).fit()
    a, b = ols.params
    np.testing.assert_allclose([got.intercept, got.b], [a, b], rtol=1e-9)
    np.testing.assert_allclose(got.tstat, ols.tvalues[1], rtol=1e-9)
    np.testing.assert_allclose(got.resid_std, math.sqrt(ols.scale), rtol=1e-9)
    np.testing.assert_allclose(got.half_life, -math.log(2) / math.log(1 + b), rtol=1e-9)
    np.testing.assert_allclose(got.mean, a / -b, rtol=1e-9)
    assert got.nobs == 1999
    ref = adfuller(s, maxlag=0, autolag=None, regression="c", result_object=True)
    assert abs(got.pvalue - ref.pvalue) <= 1e-10


def test_half_life_recovers_true_ar_coefficient() -> None:
    # True half-life of an AR(1) with phi = 0.95 is ln 2 / -ln 0.95 = 13.51 bars; with 20000 points
    # the OLS phi has standard error sqrt((1 - phi^2)/n) = 0.0022, i.e. about +-0.6 bars of half-life.
    got = half_life(ou(20000, 0.95, seed=3))
    assert abs(got.half_life - math.log(2) / -math.log(0.95)) < 2.0
    assert got.pvalue < 0.01


def test_half_life_not_mean_reverting_is_inf() -> None:
    explosive = np.cumprod(np.full(200, 1.01)) + np.random.default_rng(1).normal(0, 0.01, 200)
    got = half_life(explosive)
    assert got.b > 0 and got.half_life == math.inf


def test_half_life_overshooting_is_nan() -> None:
    # phi = -0.5: b = -1.5 <= -1, the spread flips sign every bar, a decay time is undefined.
    got = half_life(ou(3000, -0.5, seed=4))
    assert got.phi < 0 and math.isnan(got.half_life) and math.isnan(got.kappa)


def test_hurst_of_a_straight_line_is_one() -> None:
    got = hurst(np.arange(500.0) * 0.3 + 7.0, min_lag=2, max_lag=50)
    assert abs(got.h - 1.0) < 1e-12
    assert got.lags == tuple(range(2, 51))


def test_hurst_random_walk_is_one_half() -> None:
    # Independent increments: E[(x_{t+k} - x_t)^2] = k sigma^2 exactly, so h -> 0.5. Over 20 seeds of
    # 5000 points (lags 2..100) the estimate has a standard deviation of ~0.03: the mean of 20 is within
    # 0.02 (three standard errors) and every single estimate within 0.08 (under three deviations).
    estimates = [hurst(np.cumsum(np.random.default_rng(s).normal(size=5000))).h for s in range(20)]
    assert abs(np.mean(estimates) - 0.5) < 0.02
    assert max(abs(h - 0.5) for h in estimates) < 0.08


def test_hurst_mean_reverting_is_below_one_half() -> None:
    # OU with phi = 0.9 (half-life 6.6 bars): the variance of k-differences saturates at 2 var(s),
    # so over lags 2..100 the slope is far below 0.5 (about 0.15); 0.35 leaves a wide margin.
    assert hurst(ou(5000, 0.9, seed=5)).h < 0.35


def test_hurst_trending_is_above_one_half() -> None:
    # Positively autocorrelated increments (AR(1) returns, phi = 0.6): the variance of k-differences
    # grows faster than k at short lags, so h > 0.5 (about 0.6 over lags 2..50).
    returns = ou(5000, 0.6, seed=6)
    assert hurst(np.cumsum(returns), max_lag=50).h > 0.55
    # A random walk with drift counts as trending (differences are not demeaned).
    drift = np.cumsum(np.random.default_rng(7).normal(0.5, 1.0, 5000))
    assert hurst(drift).h > 0.7


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: half_life([1.0, 2.0, 3.0]), "at least 4"),
        (lambda: half_life(np.full(30, 2.0)), "constant"),
        (lambda: half_life([1.0, 2.0, np.nan, 3.0, 5.0]), "NaN at position 2"),
        (lambda: half_life([1.0, 2.0, -np.inf, 3.0, 5.0]), "-inf at position 2"),
        (lambda: hurst(np.arange(20.0), max_lag=50), "at least 52"),
        (lambda: hurst(np.arange(100.0), min_lag=0), "min_lag"),
        (lambda: hurst(np.arange(100.0), min_lag=5, max_lag=5), "max_lag"),
        (lambda: hurst(np.full(100, 1.0)), "constant"),
    ],
)
def test_bad_input_gives_clear_error(call, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()
