"""analyze_pair: every number in the report re-derived with the reference libraries on the same bars.

Oracles: statsmodels 0.15 (``OLS``, ``adfuller``, ``coint``, ``coint_johansen``), pandas rolling
mean/std (ddof=1) for the z-score and ``Series.corr`` for return correlations; the Huber and
Theil-Sen fits are taken from ``shared.analytics.hedge`` (checked against scikit-learn in
test_hedge.py) and their spreads tested with ``adfuller``. Tolerances: statistics rtol 1e-8,
p-values 1e-10 absolute, estimates rtol 1e-9.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import adfuller, coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from shared.analytics.hedge import huber, theil_sen
from shared.analytics.kalman import kalman_hedge
from shared.analytics.report import METHODS, analyze_pair
from shared.errors import InvalidInput
from shared.testing.generator import CointegratedSpec, generate_ticks

# A lively x leg and a fast spread (half-life ln2 * 20 = 14 s): 10 minutes hold ~40 half-lives.
SPEC = CointegratedSpec(sigma_x=20.0, duration_s=600.0, theta=1.0 / 20.0)
WINDOW = 120


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """1-second last-price bars of both generated legs, forward-filled, with a UTC index."""
    rows = [(t.ts_event_us, t.instrument, t.price) for t in generate_ticks(SPEC)]
    frame = pd.DataFrame(rows, columns=["ts", "instrument", "price"])
    frame["ts"] = pd.to_datetime(frame["ts"], unit="us", utc=True).dt.floor("1s")
    wide = frame.pivot_table(index="ts", columns="instrument", values="price", aggfunc="last").ffill().dropna()
    return wide.rename(columns={SPEC.y_instrument: "y", SPEC.x_instrument: "x"})


@pytest.fixture(scope="module")
def report(bars: pd.DataFrame) -> dict:
    return analyze_pair(bars["y"], bars["x"], timeframe="1s", window=WINDOW)


def test_report_is_plain_json(report: dict) -> None:
    text = json.dumps(report, allow_nan=False)  # raises on NaN/inf or numpy types
    assert json.loads(text) == report
    assert set(report["hedge"]) == set(METHODS)


def test_hedge_table_matches_references(bars: pd.DataFrame, report: dict) -> None:
    y, x = bars["y"].to_numpy(), bars["x"].to_numpy()
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose([report["hedge"]["ols"]["alpha"], report["hedge"]["ols"]["beta"]], fit.params, rtol=1e-9)
    for name, res in (("huber", huber(y, x)), ("theil_sen", theil_sen(y, x))):
        assert (report["hedge"][name]["beta"], report["hedge"][name]["alpha"]) == (res.beta, res.alpha)
        s = y - res.alpha - res.beta * x
        assert abs(report["hedge"][name]["adf_pvalue"] - adfuller(s, result_object=True).pvalue) <= 1e-10
    kal = kalman_hedge(y, x)
    assert report["hedge"]["kalman"]["beta"] == kal.beta[-1]
    kal_spread = kal.spread[np.isfinite(kal.spread)]
    assert abs(report["hedge"]["kalman"]["adf_pvalue"] - adfuller(kal_spread, result_object=True).pvalue) <= 1e-10
    # OLS spread: half-life from the AR(1) OLS fit, latest z-score from pandas rolling (ddof=1).
    s = pd.Series(y - fit.params[0] - fit.params[1] * x)
    b = sm.OLS(s.diff().dropna().to_numpy(), sm.add_constant(s.shift().dropna().to_numpy())).fit().params[1]
    np.testing.assert_allclose(report["hedge"]["ols"]["half_life"], -np.log(2) / np.log1p(b), rtol=1e-8)
    z = (s - s.rolling(WINDOW).mean()) / s.rolling(WINDOW).std()
    np.testing.assert_allclose(report["zscore"]["latest"], z.iloc[-1], rtol=1e-8)
    np.testing.assert_allclose(report["hedge"]["ols"]["zscore"], z.iloc[-1], rtol=1e-8)


def test_tests_section_matches_statsmodels(bars: pd.DataFrame, report: dict) -> None:
    y, x = bars["y"].to_numpy(), bars["x"].to_numpy()
    for key, (a, b) in {"y_on_x": (y, x), "x_on_y": (x, y)}.items():
        ref = coint(a, b)
        np.testing.assert_allclose(report["engle_granger"][key]["stat"], ref[0], rtol=1e-8)
        assert abs(report["engle_granger"][key]["pvalue"] - ref[1]) <= 1e-10
    joh = coint_johansen(np.column_stack([y, x]), 0, 1)
    np.testing.assert_allclose(report["johansen"]["trace_stat"], joh.lr1, rtol=1e-8)
    adf_y = adfuller(y, result_object=True)
    np.testing.assert_allclose(report["adf"]["y"]["stat"], adf_y.statistic, rtol=1e-8)
    assert report["adf"]["y"]["used_lag"] == adf_y.lags
    ry, rx = pd.Series(np.log(y)).diff().dropna(), pd.Series(np.log(x)).diff().dropna()
    np.testing.assert_allclose(report["correlation"]["returns"], ry.corr(rx), rtol=1e-9)
    roll = ry.reset_index(drop=True).rolling(WINDOW).corr(rx.reset_index(drop=True))
    np.testing.assert_allclose(report["correlation"]["returns_rolling_latest"], roll.iloc[-1], rtol=1e-7)
    lags = report["lead_lag"]["lags"]
    best = lags.index(report["lead_lag"]["best_lag"])
    k = lags[best]
    np.testing.assert_allclose(report["lead_lag"]["correlations"][best], ry.reset_index(drop=True).corr(rx.reset_index(drop=True).shift(-k)), rtol=1e-9)
    assert report["describe"]["y"]["last"] == y[-1] and report["describe"]["x"]["count"] == len(x)
    assert report["start"] == bars.index[0].isoformat() and report["nobs"] == len(bars)


def test_generated_pair_reads_as_cointegrated(report: dict) -> None:
    # Known DGP: y = 100 + 0.05 x + OU spread (half-life 14 s), so the OLS beta is near 0.05 and the
    # OLS spread is stationary (ADF rejects at 5 %) while each leg is not.
    assert abs(report["hedge"]["ols"]["beta"] - SPEC.beta) < 0.01
    assert report["adf"]["spread_ols"]["pvalue"] < 0.05
    assert report["adf"]["x"]["pvalue"] > 0.05


def test_method_subset_and_order(bars: pd.DataFrame) -> None:
    out = analyze_pair(bars["y"], bars["x"], timeframe="1s", window=60, methods=("theil_sen", "ols", "ols"))
    assert list(out["hedge"]) == ["theil_sen", "ols"]
    assert list(analyze_pair(bars["y"], bars["x"], timeframe="1s", window=60, methods="huber")["hedge"]) == ["huber"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ("ols", "lasso")}, "unknown hedge method 'lasso'"),
        ({"methods": ()}, "at least one hedge method"),
        ({"window": 10_000}, "longer than the series"),
        ({"window": 1}, "window must be an integer >= 3"),
        ({"timeframe": "tick"}, "no fixed length"),
    ],
)
def test_bad_options_give_clear_errors(bars: pd.DataFrame, kwargs: dict, match: str) -> None:
    args = {"timeframe": "1s", "window": 60, **kwargs}
    with pytest.raises(InvalidInput, match=match):
        analyze_pair(bars["y"], bars["x"], **args)


def test_bad_series_give_clear_errors(bars: pd.DataFrame) -> None:
    y, x = bars["y"].to_numpy(), bars["x"].to_numpy()
    with pytest.raises(InvalidInput, match="equal lengths"):
        analyze_pair(y, x[:-1], timeframe="1s", window=60)
    with pytest.raises(InvalidInput, match="at least 60"):
        analyze_pair(y[:30], x[:30], timeframe="1s", window=10)
    with pytest.raises(InvalidInput, match="NaN at position 5"):
        analyze_pair(np.r_[y[:5], np.nan, y[6:]], x, timeframe="1s", window=60)
    with pytest.raises(InvalidInput, match="x is constant"):
        analyze_pair(y, np.full_like(x, 3.0), timeframe="1s", window=60)
    with pytest.raises(InvalidInput, match="y is constant"):
        analyze_pair(np.full_like(y, 3.0), x, timeframe="1s", window=60)
