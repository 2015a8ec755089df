"""Lead-lag cross-correlation: oracle ``pandas.Series.corr`` on shifted series (rtol 1e-12), planted leads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.analytics.leadlag import cross_correlation
from shared.errors import InvalidInput


def planted(lead: int, n: int = 3000, seed: int = 0, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """b_t = a_{t-lead} + noise: a leads b by ``lead`` bars (for lead > 0)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = np.roll(a, lead) + noise * rng.normal(size=n)
    return a, b


def test_every_lag_matches_pandas_shifted_corr() -> None:
    a, b = planted(3, n=500)
    got = cross_correlation(a, b, max_lag=6)
    sa, sb = pd.Series(a), pd.Series(b)
    expected = [sa.corr(sb.shift(-k)) for k in range(-6, 7)]  # corr(a_t, b_{t+k})
    assert got.lags == tuple(range(-6, 7))
    np.testing.assert_allclose(got.correlations, expected, rtol=1e-12)


@pytest.mark.parametrize("lead", [0, 1, 4, -2, -7])
def test_planted_lead_is_recovered_exactly(lead: int) -> None:
    a, b = planted(lead, seed=abs(lead) + 10)
    got = cross_correlation(a, b, max_lag=10)
    assert got.best_lag == lead  # positive = a leads b
    # Signal variance 1, noise 0.25: the true correlation at the planted lag is 1/sqrt(1.25) = 0.894.
    assert abs(got.best_corr - 1 / np.sqrt(1.25)) < 0.03


def test_swapping_arguments_flips_the_sign() -> None:
    a, b = planted(5, seed=2)
    assert cross_correlation(a, b, 8).best_lag == 5
    assert cross_correlation(b, a, 8).best_lag == -5


def test_constant_overlap_gives_nan_not_error() -> None:
    a = np.r_[np.zeros(5), np.random.default_rng(1).normal(size=50)]
    b = np.random.default_rng(2).normal(size=55)
    got = cross_correlation(a, b, max_lag=3)
    assert all(np.isfinite(got.correlations))
    assert np.isfinite(got.best_corr)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cross_correlation(np.arange(10.0), np.arange(9.0), 2), "equal lengths, got 10 and 9"),
        (lambda: cross_correlation(np.arange(5.0), np.arange(5.0), 3), "at least 6"),
        (lambda: cross_correlation(np.arange(10.0), np.arange(10.0), -1), "non-negative"),
        (lambda: cross_correlation([1.0, np.nan, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], 0), "NaN at position 1"),
        (lambda: cross_correlation(np.ones(20), np.arange(20.0), 2), "constant"),
    ],
)
def test_bad_input_gives_clear_error(call, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()
