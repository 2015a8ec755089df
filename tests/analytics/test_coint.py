"""Cointegration tests against statsmodels 0.15 on the same inputs.

Oracles and tolerances:
- ``statsmodels.tsa.stattools.coint`` (Engle-Granger): statistic rtol 1e-8, p-value 1e-10 absolute,
  critical values 1e-12 absolute; beta/alpha against ``statsmodels OLS(y, add_constant(x))`` rtol 1e-9.
- ``statsmodels.tsa.vector_ar.vecm.coint_johansen``: trace / max-eigenvalue statistics and
  eigenvalues rtol 1e-8 (atol 1e-7 / 1e-10 for values near 0, see the test), critical values exact (same table),
  eigenvectors equal up to the sign of each column (both are normalised to v' S11 v = 1; the sign of
  an eigenvector is arbitrary) to 1e-8 absolute.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from shared.analytics.coint import cointegration_matrix, engle_granger, johansen
from shared.errors import InvalidInput
from shared.testing.generator import CointegratedSpec, generate_ticks

KLINES = {
    "BTCUSDT": "binance/klines/usdm_BTCUSDT_1m_20250606T2141Z_20250616T2140Z.signalbot.csv.gz",
    "ETHUSDT": "binance/klines/usdm_ETHUSDT_1m_20250607T0844Z_20250617T0843Z.signalbot.csv.gz",
}


# The generator with a livelier x leg (sigma_x 20 per sqrt(s)), so over 15 minutes beta * x moves
# ~10x the spread's stationary std (~3.1) and the hedge ratio is well identified.
SPEC = CointegratedSpec(sigma_x=20.0)


def generated_pair(spec: CointegratedSpec = SPEC) -> tuple[np.ndarray, np.ndarray]:
    """1-second last-price bars of the seeded cointegrated generator (known beta = spec.beta)."""
    rows = [(t.ts_event_us // 1_000_000, t.instrument, t.price) for t in generate_ticks(spec)]
    frame = pd.DataFrame(rows, columns=["sec", "instrument", "price"])
    wide = frame.pivot_table(index="sec", columns="instrument", values="price", aggfunc="last").ffill().dropna()
    return wide[spec.y_instrument].to_numpy(), wide[spec.x_instrument].to_numpy()


def random_walks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return 50.0 + np.cumsum(rng.normal(size=n)), 80.0 + np.cumsum(rng.normal(size=n))


@pytest.fixture(scope="module")
def coint_pair() -> tuple[np.ndarray, np.ndarray]:
    return generated_pair()


def assert_same_as_coint(y: np.ndarray, x: np.ndarray, trend: str, autolag: str | None, maxlag: int | None) -> None:
    ref = coint(y, x, trend=trend, autolag=autolag, maxlag=maxlag)
    got = engle_granger(y, x, trend=trend, autolag=autolag, maxlag=maxlag)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.stat, ref[0], rtol=1e-8)
    assert abs(got.pvalue - ref[1]) <= 1e-10
    np.testing.assert_allclose(list(got.critical_values.values()), ref[2], rtol=0, atol=1e-12)


@pytest.mark.parametrize("trend", ["c", "ct"])
@pytest.mark.parametrize("autolag", ["aic", "bic", "t-stat", None])
def test_engle_granger_matches_coint_on_generated_pair(coint_pair, trend: str, autolag: str | None) -> None:
    y, x = coint_pair
    assert_same_as_coint(y, x, trend, autolag, None if autolag else 4)
    assert_same_as_coint(x, y, trend, autolag, None if autolag else 4)  # the other ordering


@pytest.mark.parametrize("trend", ["c", "ct"])
@pytest.mark.parametrize("autolag", ["aic", None])
def test_engle_granger_matches_coint_on_independent_walks(trend: str, autolag: str | None) -> None:
    y, x = random_walks(700, seed=21)
    assert_same_as_coint(y, x, trend, autolag, None if autolag else 3)


def test_engle_granger_hedge_matches_ols_and_recovers_generator_beta(coint_pair) -> None:
    y, x = coint_pair
    got = engle_granger(y, x)
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose([got.alpha, got.beta], ols.params, rtol=1e-9)
    np.testing.assert_allclose(got.resid_std, np.sqrt(ols.scale), rtol=1e-9)
    # Generator: y = 100 + 0.05 x + OU spread; the OLS slope is within a few % of the known beta.
    assert abs(got.beta - SPEC.beta) < 0.01
    assert got.pvalue < 0.05  # ~11 half-lives of data: rejected at the 5 % level


def test_engle_granger_perfect_collinearity_gives_minus_inf() -> None:
    x = 100.0 + np.cumsum(np.random.default_rng(3).normal(size=200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = coint(2.0 * x + 1.0, x)
    got = engle_granger(2.0 * x + 1.0, x)
    assert got.stat == ref[0] == -np.inf
    assert got.pvalue == ref[1] == 0.0


@pytest.mark.real_data
def test_engle_granger_matches_coint_on_real_klines(data_dir: Path) -> None:
    btc = pd.read_csv(data_dir / KLINES["BTCUSDT"], index_col="open_time")["close"]
    eth = pd.read_csv(data_dir / KLINES["ETHUSDT"], index_col="open_time")["close"]
    both = pd.concat({"btc": btc, "eth": eth}, axis=1, join="inner").iloc[:4000]
    y, x = np.log(both["eth"].to_numpy()), np.log(both["btc"].to_numpy())
    for trend in ("c", "ct"):
        assert_same_as_coint(y, x, trend, "aic", None)
        assert_same_as_coint(x, y, trend, "aic", None)


@pytest.mark.parametrize("det_order", [-1, 0, 1])
@pytest.mark.parametrize("k_ar_diff", [0, 1, 2])
def test_johansen_matches_coint_johansen(coint_pair, det_order: int, k_ar_diff: int) -> None:
    y, x = coint_pair
    w = 30.0 + np.cumsum(np.random.default_rng(5).normal(size=y.shape[0]))
    data = np.column_stack([y, x, w])
    ref = coint_johansen(data, det_order, k_ar_diff)
    got = johansen(data, det_order=det_order, k_ar_diff=k_ar_diff)
    # atol: with det_order=-1 the raw price levels (~3e3, 6e4) enter S11 undemeaned and the oracle
    # inverts it explicitly, so statistics near 0 agree only to ~1e-8 absolute (critical values ~4-30).
    np.testing.assert_allclose(got.trace_stat, ref.lr1, rtol=1e-8, atol=1e-7)
    np.testing.assert_allclose(got.max_eig_stat, ref.lr2, rtol=1e-8, atol=1e-7)
    np.testing.assert_allclose(got.eigenvalues, ref.eig, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(got.trace_crit, ref.cvt)
    np.testing.assert_array_equal(got.max_eig_crit, ref.cvm)
    signs = np.sign(got.vectors[0] * ref.evec[0])
    np.testing.assert_allclose(got.vectors, ref.evec * signs, atol=1e-8)
    # Rank: the first r with trace (max-eig) statistic below its 95 % critical value.
    expected_trace_rank = next((r for r in range(3) if ref.lr1[r] <= ref.cvt[r, 1]), 3)
    expected_eig_rank = next((r for r in range(3) if ref.lr2[r] <= ref.cvm[r, 1]), 3)
    assert (got.rank_trace, got.rank_max_eig) == (expected_trace_rank, expected_eig_rank)
    np.testing.assert_allclose(got.coint_vector, ref.evec[:, 0] / ref.evec[0, 0], rtol=1e-8, atol=1e-8)


def test_johansen_finds_one_relation_with_generator_beta(coint_pair) -> None:
    y, x = coint_pair
    got = johansen(np.column_stack([y, x]), det_order=0, k_ar_diff=1)
    # H0 "no cointegration" rejected at 1 % (trace statistic above its 99 % critical value).
    assert got.trace_stat[0] > got.trace_crit[0, 2] and got.rank_trace >= 1
    # Vector normalised on y: y - beta x is stationary, so the x entry is about -0.05 (known beta).
    assert abs(got.coint_vector[1] + SPEC.beta) < 0.01


def test_johansen_accepts_dataframe() -> None:
    y, x = random_walks(300, seed=9)
    frame = pd.DataFrame({"y": y, "x": x})
    np.testing.assert_array_equal(johansen(frame).trace_stat, johansen(frame.to_numpy()).trace_stat)


def test_cointegration_matrix_orientation(coint_pair) -> None:
    y, x = coint_pair
    w = 30.0 + np.cumsum(np.random.default_rng(5).normal(size=y.shape[0]))
    out = cointegration_matrix({"y": y, "x": x, "w": w})
    assert list(out.index) == list(out.columns) == ["y", "x", "w"]
    assert np.isnan(np.diag(out.to_numpy())).all()
    # Row = dependent series, column = regressor (oracle: statsmodels coint(row, column)).
    for a, b in [("y", "x"), ("x", "y"), ("y", "w"), ("w", "x")]:
        series = {"y": y, "x": x, "w": w}
        assert abs(out.loc[a, b] - coint(series[a], series[b])[1]) <= 1e-10
    assert out.loc["y", "x"] < 0.05 and out.loc["y", "w"] > 0.05
    frame_out = cointegration_matrix(pd.DataFrame({"y": y, "x": x, "w": w}))
    pd.testing.assert_frame_equal(out, frame_out)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: engle_granger([1.0] * 5, [2.0] * 5), "at least 10"),
        (lambda: engle_granger(np.arange(20.0), np.arange(19.0)), "equal lengths, got 20 and 19"),
        (lambda: engle_granger(np.arange(20.0), np.full(20, 1.0)), "constant"),
        (lambda: engle_granger(np.r_[np.nan, np.arange(19.0)], np.arange(20.0)), "NaN at position 0"),
        (lambda: engle_granger(np.arange(20.0), np.arange(20.0) ** 2, trend="n"), "unknown trend"),
        (lambda: johansen(np.arange(20.0)), "2-D array"),
        (lambda: johansen(np.ones((30, 2)), det_order=2), "det_order"),
        (lambda: johansen(np.ones((30, 2)), k_ar_diff=-1), "k_ar_diff"),
        (lambda: johansen(np.ones((5, 2))), "at least"),
        (lambda: johansen(np.column_stack([np.arange(30.0), np.r_[np.inf, np.arange(29.0)]])), "inf at position 0"),
        (lambda: cointegration_matrix({"a": np.arange(20.0)}), "at least 2 series"),
        (lambda: cointegration_matrix({"a": np.arange(20.0), "b": np.arange(19.0)}), "equal lengths"),
    ],
)
def test_bad_input_gives_clear_error(call, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()
