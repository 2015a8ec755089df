"""Hedge ratios (OLS, rolling OLS, Huber, Theil-Sen, dispatcher) against reference libraries.

Oracles: statsmodels ``OLS`` (params, rsquared, sqrt(scale)), pandas rolling cov/var,
scikit-learn ``HuberRegressor`` / ``TheilSenRegressor``, ``scipy.stats.theilslopes``.
Tolerances sit next to each comparison with the reason.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.linear_model import HuberRegressor, TheilSenRegressor

from shared.analytics.hedge import hedge, huber, ols, rolling_ols, theil_sen
from shared.errors import InvalidInput
from shared.testing.generator import CointegratedSpec, generate_ticks

# --- data ---------------------------------------------------------------------------------


def load_klines(data_dir: Path) -> pd.DataFrame:
    """BTCUSDT (x) and ETHUSDT (y) USD-M 1m klines joined on open_time (the 9.5-day overlap)."""
    frames = {}
    for leg, symbol in (("x", "BTCUSDT"), ("y", "ETHUSDT")):
        (path,) = sorted((data_dir / "binance" / "klines").glob(f"usdm_{symbol}_1m_*.csv.gz"))
        with gzip.open(path, "rt") as fh:
            f = pd.read_csv(fh)
        frames[leg] = f.set_index("open_time")[["close", "volume"]].add_suffix(f"_{leg}")
    return frames["x"].join(frames["y"], how="inner")


def generator_seconds(spec: CointegratedSpec) -> tuple[np.ndarray, np.ndarray]:
    """Last trade price per second of each leg (forward-filled), from the seeded tick generator."""
    ticks = generate_ticks(spec)
    frame = pd.DataFrame(
        {"sec": [t.ts_event_us // 1_000_000 for t in ticks], "leg": [t.instrument for t in ticks], "p": [t.price for t in ticks]}
    )
    wide = frame.groupby(["sec", "leg"])["p"].last().unstack().ffill().dropna()
    return wide[spec.y_instrument].to_numpy(), wide[spec.x_instrument].to_numpy()


# A spec with enough signal to pin beta down: x spans ~600 over the run (sd ~160); the spread
# has sd sigma_s / sqrt(2 theta) ~ 0.22 and a 7 s half-life, i.e. ~130 independent draws, so the
# standard error of beta is ~ 0.22 / (160 * sqrt(130)) ~ 1.2e-4 (0.25% of beta 0.05). The
# tolerance, 2%, is ~8 standard errors (intraday tick rounding adds a little noise).
GEN_SPEC = CointegratedSpec(sigma_x=10.0, theta=1.0 / 10.0, sigma_s=0.1, duration_s=1800.0, seed=11)
GEN_BETA_RTOL = 0.02


@pytest.fixture(scope="module")
def gen_pair() -> tuple[np.ndarray, np.ndarray]:
    return generator_seconds(GEN_SPEC)


@pytest.fixture(scope="module")
def klines(data_dir: Path) -> pd.DataFrame:
    return load_klines(data_dir)


def _noisy_line(n: int = 400, seed: int = 3, outliers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    y = 5.0 + 1.7 * x + rng.normal(0.0, 2.0, n)
    if outliers:
        idx = rng.choice(n, outliers, replace=False)
        y[idx] += rng.choice([-1.0, 1.0], outliers) * rng.uniform(30.0, 60.0, outliers)
    return y, x


# --- OLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("container", [np.asarray, pd.Series, list])
@pytest.mark.parametrize("intercept", [True, False])
def test_ols_matches_statsmodels(container, intercept: bool) -> None:
    y, x = _noisy_line()
    res = ols(container(y), container(x), intercept=intercept)
    ref = sm.OLS(y, sm.add_constant(x) if intercept else x).fit()
    # statsmodels OLS (pinv); well-conditioned data -> agreement to ~1e-12, allow 1e-10.
    beta_ref = ref.params[1] if intercept else ref.params[0]
    alpha_ref = ref.params[0] if intercept else 0.0
    np.testing.assert_allclose(res.beta, beta_ref, rtol=1e-10)
    np.testing.assert_allclose(res.alpha, alpha_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.r2, ref.rsquared, rtol=1e-10)  # uncentered when no constant
    np.testing.assert_allclose(res.resid_std, np.sqrt(ref.scale), rtol=1e-10)
    assert res.nobs == len(y) and res.intercept is intercept


@pytest.mark.real_data
@pytest.mark.parametrize("intercept", [True, False])
def test_ols_on_btc_eth_klines_matches_statsmodels(klines: pd.DataFrame, intercept: bool) -> None:
    y, x = klines["close_y"].to_numpy(), klines["close_x"].to_numpy()
    res = ols(y, x, intercept=intercept)
    ref = sm.OLS(y, sm.add_constant(x) if intercept else x).fit()
    # x ~ 1e5 with sd ~ 2e3: [1, x] has condition number ~1e7, so statsmodels' pinv keeps ~9
    # digits of alpha/beta; we compare at 1e-7.
    np.testing.assert_allclose(res.beta, ref.params[-1], rtol=1e-7)
    np.testing.assert_allclose(res.alpha, ref.params[0] if intercept else 0.0, rtol=1e-7)
    np.testing.assert_allclose(res.r2, ref.rsquared, rtol=1e-7)
    np.testing.assert_allclose(res.resid_std, np.sqrt(ref.scale), rtol=1e-7)


def test_ols_recovers_generator_beta(gen_pair) -> None:
    y, x = gen_pair
    res = ols(y, x)
    assert res.beta == pytest.approx(GEN_SPEC.beta, rel=GEN_BETA_RTOL)
    assert res.r2 > 0.9


def test_ols_exact_collinear_fit() -> None:
    x = np.linspace(1.0e5, 1.001e5, 50)
    res = ols(2.0 * x, x)
    assert res.beta == 2.0 and res.alpha == 0.0  # scaling by 2 is exact in binary floating point
    assert res.resid_std == 0.0 and res.r2 == 1.0
    res0 = ols(2.0 * x, x, intercept=False)
    assert res0.beta == 2.0 and res0.resid_std == 0.0 and res0.r2 == 1.0


def test_ols_constant_y_gives_zero_beta_and_nan_r2() -> None:
    res = ols(np.full(10, 3.0), np.arange(10.0))
    assert res.beta == 0.0 and res.alpha == 3.0 and res.resid_std == 0.0
    assert np.isnan(res.r2)


@pytest.mark.parametrize(
    ("y", "x", "kwargs", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], {}, "equal lengths, got 3 and 2"),
        ([1.0, 2.0], [1.0, 2.0], {}, "at least 3 points, got 2"),
        ([1.0], [1.0], {"intercept": False}, "at least 2 points, got 1"),
        ([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], {}, "y contains NaN at position 1"),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, np.inf, 4.0], {}, "x contains inf at position 2"),
        ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], {}, "x is constant"),
        ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], {"intercept": False}, "x is all zeros"),
        ("abc", [1.0, 2.0, 3.0], {}, "sequence of numbers"),
        ([[1.0, 2.0]], [1.0, 2.0], {}, "one-dimensional"),
    ],
)
def test_ols_bad_input_raises(y, x, kwargs, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        ols(y, x, **kwargs)


# --- rolling OLS ---------------------------------------------------------------------------


def test_rolling_ols_matches_statsmodels_per_window() -> None:
    y, x = _noisy_line(n=120)
    w = 30
    res = rolling_ols(y, x, w)
    assert np.isnan(res.beta[: w - 1]).all() and np.isnan(res.r2[: w - 1]).all()
    for end in (w - 1, 57, 119):
        sl = slice(end - w + 1, end + 1)
        ref = sm.OLS(y[sl], sm.add_constant(x[sl])).fit()
        # statsmodels OLS on that window; two-pass sums vs pinv agree to ~1e-12.
        np.testing.assert_allclose(
            [res.beta[end], res.alpha[end], res.r2[end]], [ref.params[1], ref.params[0], ref.rsquared], rtol=1e-10
        )


@pytest.mark.real_data
@pytest.mark.parametrize("window", [300, 3000])
def test_rolling_ols_on_klines_matches_pandas_rolling(klines: pd.DataFrame, window: int) -> None:
    y, x = klines["close_y"], klines["close_x"]
    res = rolling_ols(y, x, window)
    beta_ref = x.rolling(window).cov(y) / x.rolling(window).var()
    alpha_ref = y.rolling(window).mean() - beta_ref * x.rolling(window).mean()
    r2_ref = x.rolling(window).corr(y) ** 2
    # pandas rolling cov is mean(xy) - mean(x) mean(y) on Kahan-summed running means: at x ~ 1e5
    # it keeps ~9-10 digits (measured ~2e-9 relative on beta), so rtol 1e-7 on beta/r2; alpha is
    # mean(y) - beta*mean(x) ~ a difference of ~5e3-sized terms, so 1e-7 relative to mean(y).
    np.testing.assert_allclose(res.beta, beta_ref.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.r2, r2_ref.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.alpha, alpha_ref.to_numpy(), rtol=0, atol=1e-7 * float(y.mean()) * 10)


def test_rolling_ols_liquidity_filter_excludes_bars_with_either_leg_illiquid() -> None:
    rng = np.random.default_rng(5)
    y, x = _noisy_line(n=200, seed=5)
    vol_y, vol_x = rng.uniform(0.0, 10.0, 200), rng.uniform(0.0, 10.0, 200)
    w, need = 40, 10
    res = rolling_ols(y, x, w, min_volume=3.0, volume=(vol_y, vol_x), min_periods=need)
    keep = (vol_y >= 3.0) & (vol_x >= 3.0)
    # Oracle 1: pandas rolling with the excluded bars set to NaN on both legs (pairwise-complete).
    xs, ys = pd.Series(np.where(keep, x, np.nan)), pd.Series(np.where(keep, y, np.nan))
    beta_ref = xs.rolling(w, min_periods=need).cov(ys) / xs.rolling(w, min_periods=need).var()
    np.testing.assert_allclose(res.beta, beta_ref.to_numpy(), rtol=1e-9)  # small prices: ~1e-12
    # Oracle 2: statsmodels OLS on the kept bars of one window.
    end = 150
    sl = np.arange(end - w + 1, end + 1)
    kept = sl[keep[sl]]
    ref = sm.OLS(y[kept], sm.add_constant(x[kept])).fit()
    np.testing.assert_allclose([res.beta[end], res.alpha[end], res.r2[end]], [ref.params[1], ref.params[0], ref.rsquared], rtol=1e-10)
    assert res.nobs[end] == len(kept)


def test_rolling_ols_single_volume_array_and_min_periods() -> None:
    y, x = _noisy_line(n=60)
    vol = np.ones(60)
    vol[45] = 0.0
    res = rolling_ols(y, x, 10, min_volume=0.5, volume=vol)  # min_periods defaults to the window
    assert np.isnan(res.beta[45:55]).all() and not np.isnan(res.beta[55])
    assert res.nobs[50] == 9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 1}, "window must be an integer >= 2"),
        ({"window": 500}, "longer than the series"),
        ({"window": 10, "min_volume": 1.0}, "needs both min_volume and volume"),
        ({"window": 10, "min_volume": 1.0, "volume": np.ones(5)}, "length of the prices, got 5 and 50"),
        ({"window": 10, "min_periods": 20}, "exceeds the window"),
    ],
)
def test_rolling_ols_bad_arguments(kwargs, match: str) -> None:
    y, x = _noisy_line(n=50)
    with pytest.raises(InvalidInput, match=match):
        rolling_ols(y, x, **kwargs)


# --- Huber ---------------------------------------------------------------------------------


def _huber_objective(y, x, beta, alpha, sigma, eps) -> float:
    """scikit-learn's HuberRegressor loss with alpha=0 (textbook form, written out here)."""
    z = np.abs(y - alpha - beta * x) / sigma
    h = np.where(z <= eps, z * z, 2.0 * eps * z - eps * eps)
    return float(np.sum(sigma + sigma * h))


def _sklearn_huber(y, x, eps):
    # HuberRegressor(alpha=0) minimises the same objective (no ridge term); x is centered for
    # L-BFGS conditioning and the intercept mapped back (alpha = b0 - beta * mean(x)).
    mx = x.mean()
    ref = HuberRegressor(alpha=0.0, epsilon=eps, max_iter=10_000, tol=1e-12).fit((x - mx)[:, None], y)
    return ref.coef_[0], ref.intercept_ - ref.coef_[0] * mx, ref.scale_


@pytest.mark.parametrize("eps", [1.35, 2.0])
def test_huber_matches_sklearn_huber_regressor(eps: float) -> None:
    y, x = _noisy_line(outliers=40)
    res = huber(y, x, epsilon=eps)
    beta_ref, alpha_ref, scale_ref = _sklearn_huber(y, x, eps)
    # sklearn stops on a projected-gradient tolerance of L-BFGS: ~1e-6 relative agreement on beta
    # and sigma. The intercept is compared at mean(x) (alpha + beta * mean x): alpha itself carries
    # mean(x) times the slope difference.
    mx = x.mean()
    np.testing.assert_allclose(
        [res.beta, res.alpha + res.beta * mx, res.scale], [beta_ref, alpha_ref + beta_ref * mx, scale_ref], rtol=1e-5
    )
    # And our fixed point is at least as good a minimiser of the same objective.
    ours = _huber_objective(y, x, res.beta, res.alpha, res.scale, eps)
    theirs = _huber_objective(y, x, beta_ref, alpha_ref, scale_ref, eps)
    assert ours <= theirs * (1 + 1e-9)
    # Robustness: with 10% gross outliers Huber stays nearer the true slope 1.7 than OLS.
    assert abs(res.beta - 1.7) < abs(ols(y, x).beta - 1.7) + 1e-3


@pytest.mark.real_data
def test_huber_on_klines_matches_sklearn(klines: pd.DataFrame) -> None:
    y, x = klines["close_y"].to_numpy()[:3000], klines["close_x"].to_numpy()[:3000]
    res = huber(y, x)
    beta_ref, alpha_ref, scale_ref = _sklearn_huber(y, x, 1.35)
    mx = x.mean()  # same tolerances and intercept-at-the-mean comparison as above
    np.testing.assert_allclose(
        [res.beta, res.alpha + res.beta * mx, res.scale], [beta_ref, alpha_ref + beta_ref * mx, scale_ref], rtol=1e-5
    )
    assert _huber_objective(y, x, res.beta, res.alpha, res.scale, 1.35) <= _huber_objective(
        y, x, beta_ref, alpha_ref, scale_ref, 1.35
    ) * (1 + 1e-9)


def test_huber_recovers_generator_beta(gen_pair) -> None:
    y, x = gen_pair
    assert huber(y, x).beta == pytest.approx(GEN_SPEC.beta, rel=GEN_BETA_RTOL)


def test_huber_exact_fit_has_zero_scale() -> None:
    x = np.linspace(100.0, 200.0, 30)
    res = huber(2.0 * x, x)
    assert res.beta == 2.0 and res.scale == 0.0 and res.method == "huber"


def test_huber_rejects_bad_epsilon_and_reports_non_convergence() -> None:
    y, x = _noisy_line(n=60, outliers=6)
    with pytest.raises(InvalidInput, match="epsilon must be > 1.0"):
        huber(y, x, epsilon=0.9)
    with pytest.raises(InvalidInput, match="huber did not converge in 2 iterations"):
        huber(y, x, max_iter=2)


# --- Theil-Sen -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 300, 800])  # 800 takes the bounded-memory two-pass path
def test_theil_sen_matches_scipy_theilslopes_joint(n: int) -> None:
    y, x = _noisy_line(n=n, outliers=n // 10)
    x = np.round(x, 1)  # creates ties in x: pairs with equal x are excluded by both
    res = theil_sen(y, x)
    ref = stats.theilslopes(y, x, method="joint")
    # scipy: median of slopes over pairs with distinct x, intercept median(y - beta x). Same
    # order statistics -> equal up to the last bit of the subtraction; rtol 1e-12.
    np.testing.assert_allclose([res.beta, res.alpha], [ref.slope, ref.intercept], rtol=1e-12)


def test_theil_sen_mostly_tied_x_and_size_limit() -> None:
    # 1999 equal x and one distinct: only 1999 pairs have a slope; the sampled bracket of the
    # two-pass path holds none of them at first and must widen. Oracle: scipy theilslopes.
    rng = np.random.default_rng(3)
    x = np.zeros(2000)
    x[-1] = 1.0
    y = rng.normal(size=2000)
    ref = stats.theilslopes(y, x, method="joint")
    res = theil_sen(y, x)
    np.testing.assert_allclose([res.beta, res.alpha], [ref.slope, ref.intercept], rtol=1e-12)
    with pytest.raises(InvalidInput, match="50001 points exceeds the limit 50000"):
        theil_sen(np.zeros(50_001), np.arange(50_001.0))


@pytest.mark.real_data
def test_theil_sen_on_klines_matches_scipy(klines: pd.DataFrame) -> None:
    y, x = klines["close_y"].to_numpy()[:1500], klines["close_x"].to_numpy()[:1500]
    res = theil_sen(y, x)
    ref = stats.theilslopes(y, x, method="joint")
    np.testing.assert_allclose([res.beta, res.alpha], [ref.slope, ref.intercept], rtol=1e-12)


def test_theil_sen_agrees_with_sklearn_within_scipy_confidence_interval() -> None:
    # sklearn's TheilSenRegressor is a *spatial* median of pairwise (intercept, slope) solutions,
    # not the median of slopes, so it is not the same number; both must lie inside scipy's 95%
    # confidence interval for the Theil-Sen slope.
    y, x = _noisy_line(n=140, outliers=14)
    res = theil_sen(y, x)
    ref = stats.theilslopes(y, x, method="joint")
    sk = TheilSenRegressor(random_state=0).fit(x[:, None], y)
    assert ref.low_slope <= res.beta <= ref.high_slope
    assert ref.low_slope <= sk.coef_[0] <= ref.high_slope


def test_theil_sen_recovers_generator_beta_and_exact_line(gen_pair) -> None:
    y, x = gen_pair
    assert theil_sen(y, x).beta == pytest.approx(GEN_SPEC.beta, rel=GEN_BETA_RTOL)
    xl = np.arange(20.0)
    res = theil_sen(2.0 * xl + 1.0, xl)
    assert res.beta == 2.0 and res.alpha == 1.0 and res.scale == 0.0


# --- dispatcher ----------------------------------------------------------------------------


def test_hedge_dispatcher_returns_each_methods_answer() -> None:
    y, x = _noisy_line(n=200)
    o, h, t = ols(y, x, intercept=False), huber(y, x, epsilon=1.5), theil_sen(y, x)
    assert hedge(y, x, "ols", intercept=False).beta == o.beta
    assert (hedge(y, x, "huber", epsilon=1.5).beta, hedge(y, x, "huber", epsilon=1.5).alpha) == (h.beta, h.alpha)
    assert hedge(y, x, "theil_sen").beta == t.beta
    k = hedge(y, x, "kalman", delta=1e-6, warmup=20)
    assert k.method == "kalman" and np.isfinite(k.beta) and abs(k.beta - 1.7) < 0.1


def test_hedge_dispatcher_rejects_unknown_method_and_parameter() -> None:
    y, x = _noisy_line(n=50)
    with pytest.raises(InvalidInput, match="unknown hedge method 'lasso'"):
        hedge(y, x, "lasso")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="unknown parameter.*window.*'ols'"):
        hedge(y, x, "ols", window=5)
