"""Screening: numbers against statsmodels, planted pairs recovered among random walks, filters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.tsa.stattools import coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen
from threadpoolctl import threadpool_limits

from shared.errors import InvalidInput
from shared.research.screen import ScreenCriteria, pair_metrics, screen
from shared.testing.universe import UniverseSpec, generate_universe

SPEC = UniverseSpec(n_instruments=12, n_pairs=3, n_bars=3_000, seed=17)


@pytest.fixture(scope="module")
def universe():
    return generate_universe(SPEC)


@pytest.fixture(scope="module")
def result(universe):
    return screen(universe.closes(), "1m", workers=1)


def test_planted_pairs_rank_first(universe, result) -> None:
    planted = universe.planted_set()
    top = {frozenset((r["y"], r["x"])) for r in result.ranked.head(len(planted)).to_dict("records")}
    assert top == planted
    assert list(result.ranked["rank"]) == list(range(1, len(result.ranked) + 1))
    assert len(result.table) == 12 * 11 // 2
    # Independent random walks pass by chance at about the test's 5 % size (a walk that happens to
    # look stationary passes with several partners, so allow twice that).
    false_pass = len(result.ranked) - len(planted)
    assert false_pass <= 0.10 * (len(result.table) - len(planted))


def test_planted_pair_metrics(universe, result) -> None:
    rows = {frozenset((r["y"], r["x"])): r for r in result.table.to_dict("records")}
    for p in universe.planted:
        r = rows[frozenset((p.y, p.x))]
        assert r["passed"] and r["eg_pvalue"] < 1e-4 and r["johansen_rank"] >= 1 and r["hurst"] < 0.5
        # The spread is an AR(1) with the planted half-life; the estimate is within sampling error.
        assert r["half_life_bars"] == pytest.approx(p.half_life_bars, rel=0.35)
        if r["y"] == p.y:  # oriented y on x: the planted hedge ratio
            assert r["beta"] == pytest.approx(p.beta, rel=0.05)


def test_numbers_match_statsmodels(universe) -> None:
    # Oracle: statsmodels.tsa.stattools.coint (trend "c", autolag "aic") for both orderings,
    # coint_johansen(det_order=0, k_ar_diff=1) for the trace test, numpy corrcoef of log returns.
    # Tolerances: p-values rtol 1e-6 (same algorithm, different linear algebra), statistics 1e-9.
    closes = universe.closes().iloc[:800, :5]
    small = screen(closes, "1m")
    for r in small.table.to_dict("records")[:4]:
        a, b = closes[r["a"]].to_numpy(), closes[r["b"]].to_numpy()
        with threadpool_limits(1):  # speed only: small matrices, busy machine
            p_ab, p_ba = coint(a, b)[1], coint(b, a)[1]
            jo = coint_johansen(np.column_stack([a, b]), 0, 1)
        assert r["eg_p_ab"] == pytest.approx(p_ab, rel=1e-6, abs=1e-300)
        assert r["eg_p_ba"] == pytest.approx(p_ba, rel=1e-6, abs=1e-300)
        assert r["johansen_trace"] == pytest.approx(jo.lr1[0], rel=1e-9)
        assert r["johansen_crit5"] == pytest.approx(jo.cvt[0, 1], rel=1e-12)
        assert small.coint_matrix.loc[r["a"], r["b"]] == r["eg_p_ab"]
        assert small.coint_matrix.loc[r["b"], r["a"]] == r["eg_p_ba"]
    names = list(closes.columns)
    lr = np.diff(np.log(closes.to_numpy()), axis=0)
    np.testing.assert_allclose(small.corr_matrix.loc[names, names].to_numpy(), np.corrcoef(lr.T), rtol=1e-9, atol=1e-12)


def test_zero_crossings_per_year() -> None:
    # y - 2x alternates sign every bar around an exactly fitted line: n - 1 crossings in n bars.
    n = 200
    x = 100.0 + np.cumsum(np.random.default_rng(0).normal(0, 1, n))
    s = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    m = pair_metrics(2.0 * x + s, x, "Y", "X", bpy=525_600.0)
    assert m["crossings_per_year"] == pytest.approx((n - 1) * 525_600.0 / n)


def test_filters_and_parallel(universe, result) -> None:
    strict = screen(universe.closes(), "1m", ScreenCriteria(max_pvalue=1e-300), workers=2)
    assert strict.ranked.empty and (strict.table["rank"] == 0).all()
    cols = ["a", "b", "eg_pvalue", "hurst", "half_life_bars"]
    loose = screen(universe.closes(), "1m", workers=2)
    assert loose.table[cols].equals(result.table[cols])


def test_bad_input() -> None:
    import pandas as pd

    with pytest.raises(InvalidInput, match="at least 100"):
        screen(pd.DataFrame({"A": np.arange(1.0, 11.0), "B": np.arange(2.0, 12.0)}))
    with pytest.raises(InvalidInput, match="at least 2 instruments"):
        screen(pd.DataFrame({"A": np.arange(1.0, 201.0)}))
    bad = pd.DataFrame({"A": np.arange(1.0, 201.0), "B": np.r_[np.arange(1.0, 200.0), math.nan]})
    with pytest.raises(InvalidInput, match="positive and finite"):
        screen(bad)
