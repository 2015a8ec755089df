"""Kalman hedge ratio against a textbook matrix-form recursion written independently here.

The oracle initialises from statsmodels ``OLS`` on the warm-up points (params, ``cov_params()``,
``scale``), as the module documents, then runs the Kalman equations with numpy 2x2 matrices
(Chan's parameterisation Vw = delta / (1 - delta) I). pykalman is not used (not installable here
without pulling unmaintained code); the recursion is short enough to write out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from shared.analytics.kalman import KalmanHedge, kalman_hedge
from shared.errors import InvalidInput
from tests.analytics.test_hedge import GEN_SPEC, generator_seconds, load_klines


def textbook_kalman(y, x, delta, warmup, obs_var=None):
    ref = sm.OLS(y[:warmup], sm.add_constant(x[:warmup])).fit()
    order = [1, 0]  # statsmodels orders (const, x); our state is (beta, alpha)
    theta = np.asarray(ref.params)[order]
    P = np.asarray(ref.cov_params())[np.ix_(order, order)]
    ve = ref.scale if obs_var is None else obs_var
    vw = delta / (1.0 - delta) * np.eye(2)
    out = np.full((len(y), 4), np.nan)
    for t in range(warmup, len(y)):
        H = np.array([[x[t], 1.0]])
        R = P + vw
        e = y[t] - (H @ theta)[0]
        Q = (H @ R @ H.T)[0, 0] + ve
        K = R @ H.T / Q
        theta = theta + K[:, 0] * e
        P = R - K @ H @ R
        out[t] = theta[0], theta[1], e, Q
    return out, ve


def _walk(n=600, seed=2, scale=100.0):
    rng = np.random.default_rng(seed)
    x = scale + np.cumsum(rng.normal(0.0, 1.0, n))
    beta = 1.5 + np.cumsum(rng.normal(0.0, 0.002, n))  # slowly drifting hedge ratio
    y = 3.0 + beta * x + rng.normal(0.0, 0.5, n)
    return y, x


@pytest.mark.parametrize(("delta", "obs_var"), [(1e-4, None), (1e-6, 0.25), (1e-3, 2.0)])
def test_kalman_matches_textbook_recursion(delta, obs_var) -> None:
    y, x = _walk()
    res = kalman_hedge(y, x, delta=delta, obs_var=obs_var, warmup=40)
    ref, ve = textbook_kalman(y, x, delta, 40, obs_var)
    assert np.isnan(res.beta[:40]).all() and np.isnan(res.spread[:40]).all()
    # Same equations, different arithmetic order (unrolled scalars vs numpy matmul) and an
    # initial covariance from pinv vs fsum: agreement ~1e-12 on data at price ~100; rtol 1e-9.
    np.testing.assert_allclose(res.beta[40:], ref[40:, 0], rtol=1e-9)
    np.testing.assert_allclose(res.alpha[40:], ref[40:, 1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.spread[40:], ref[40:, 2], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.spread_var[40:], ref[40:, 3], rtol=1e-9)
    np.testing.assert_allclose(res.obs_var, ve, rtol=1e-10)


@pytest.mark.real_data
def test_kalman_on_btc_eth_klines_matches_textbook(data_dir: Path) -> None:
    k = load_klines(data_dir)
    y, x = k["close_y"].to_numpy(), k["close_x"].to_numpy()
    res = kalman_hedge(y, x, delta=1e-9, warmup=100)
    ref, _ = textbook_kalman(y, x, 1e-9, 100)
    # At x ~ 1e5 the (beta, alpha) covariance is nearly singular (alpha ~ -x beta): the two
    # arithmetic orders differ by ~1e-9 relative on beta; alpha = y - beta x carries that times
    # x / alpha. Tolerances: beta 1e-7, alpha 1e-7 * mean(x) * |beta| absolute, spread 1e-6 of y.
    np.testing.assert_allclose(res.beta[100:], ref[100:, 0], rtol=1e-7)
    np.testing.assert_allclose(res.alpha[100:], ref[100:, 1], rtol=0, atol=1e-7 * x.mean() * 0.05)
    np.testing.assert_allclose(res.spread[100:], ref[100:, 2], rtol=0, atol=1e-6 * y.mean())
    np.testing.assert_allclose(res.spread_var[100:], ref[100:, 3], rtol=1e-6)
    # The covariance stays positive definite over the 13.7k updates (standard-form update, no
    # Joseph stabilisation needed here): var beta > 0, var alpha > 0 and det P > 0 at every step.
    assert (res.spread_var[100:] > 0).all()
    f = KalmanHedge(delta=1e-9, warmup=100)
    for a, b in zip(x.tolist(), y.tolist(), strict=True):
        f.update(a, b)
        if f.warm:
            p11, p12, p22 = f.cov
            assert p11 > 0.0 and p22 > 0.0 and p11 * p22 - p12 * p12 > 0.0


def test_kalman_recovers_generator_beta() -> None:
    y, x = generator_seconds(GEN_SPEC)
    res = kalman_hedge(y, x, delta=1e-10, warmup=60)
    late = res.beta[len(y) // 2 :]
    # Near-constant beta (delta 1e-10): the filter is close to recursive least squares, so it
    # recovers the generator's beta as OLS does (tolerance argued in test_hedge: 2%).
    assert np.median(late) == pytest.approx(GEN_SPEC.beta, rel=0.02)
    # One-step spreads are centred and close to the generator's spread scale (sd ~0.22).
    z = res.spread[60:] / np.sqrt(res.spread_var[60:])
    assert abs(np.mean(z)) < 0.2


def test_streaming_equals_batch_bit_for_bit_and_state_round_trip() -> None:
    y, x = _walk(n=300)
    batch = kalman_hedge(y, x, delta=1e-5, warmup=30)
    for cut in (10, 29, 30, 31, 150):  # inside warm-up, at its end, and after
        f = KalmanHedge(delta=1e-5, warmup=30)
        steps = [f.update(xi, yi) for xi, yi in zip(x[:cut], y[:cut], strict=True)]
        g = KalmanHedge(delta=0.5, warmup=3)  # different settings: set_state must restore them
        g.set_state(json.loads(json.dumps(f.get_state(), allow_nan=False)))  # strict JSON
        assert g.get_state() == f.get_state() and g.count == cut
        steps += [g.update(xi, yi) for xi, yi in zip(x[cut:], y[cut:], strict=True)]
        got = np.array(steps)
        for col, path in enumerate((batch.beta, batch.alpha, batch.spread, batch.spread_var)):
            np.testing.assert_array_equal(got[:, col], path)  # exact: same arithmetic
    assert g.warm and g.count == 300


def test_constant_x_during_warmup_extends_warmup() -> None:
    y, x = _walk(n=200)
    x[:80] = 100.0
    res = kalman_hedge(y, x, delta=1e-5, warmup=30)
    first = int(np.flatnonzero(~np.isnan(res.beta))[0])
    assert first == 81  # buffer x[51..80] is the first non-constant one; output starts after it
    ref, _ = textbook_kalman(y[51:], x[51:], 1e-5, 30)
    np.testing.assert_allclose(res.beta[81:], ref[30:, 0], rtol=1e-9)


def test_reset_and_bad_update_leave_state_consistent() -> None:
    f = KalmanHedge(delta=1e-4, warmup=5)
    for i in range(10):
        f.update(100.0 + i * (-1) ** i, 50.0 + i)
    before = f.get_state()
    with pytest.raises(InvalidInput, match="non-finite input"):
        f.update(float("nan"), 1.0)
    assert f.get_state() == before
    f.reset()
    assert f.count == 0 and not f.warm


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": 0.0}, "delta must be > 0"),
        ({"delta": 1.0}, r"delta must be in \(0, 1\)"),
        ({"delta": -1e-4}, "delta must be > 0"),
        ({"obs_var": -1.0}, "obs_var must be >= 0"),
        ({"warmup": 2}, "warmup must be an integer >= 3"),
        ({"warmup": 100}, "at least 101 points, got 60"),
    ],
)
def test_kalman_bad_arguments(kwargs, match) -> None:
    y, x = _walk(n=60)
    with pytest.raises(InvalidInput, match=match):
        kalman_hedge(y, x, **kwargs)


def test_kalman_input_errors() -> None:
    with pytest.raises(InvalidInput, match="equal lengths, got 5 and 4"):
        kalman_hedge(np.ones(5), np.arange(4.0))
    with pytest.raises(InvalidInput, match="x contains NaN at position 2"):
        kalman_hedge(np.ones(5), [1.0, 2.0, np.nan, 4.0, 5.0], warmup=3)
    with pytest.raises(InvalidInput, match="x stays constant until the last point"):
        kalman_hedge(np.arange(60.0), np.r_[np.ones(59), 2.0], warmup=50)
    with pytest.raises(InvalidInput, match="malformed KalmanHedge state"):
        KalmanHedge().set_state({"v": 1})


def test_kalman_exact_line_tracks_without_error() -> None:
    x = pd.Series(np.linspace(100.0, 130.0, 80))
    res = kalman_hedge(2.0 * x, x, delta=1e-6, warmup=10)
    assert res.obs_var == 0.0
    np.testing.assert_allclose(res.beta[10:], 2.0, rtol=1e-12)
    np.testing.assert_allclose(res.spread[10:], 0.0, atol=1e-9)
