"""Screen a universe of instruments for tradeable pairs.

For every unordered pair {A, B} of the columns of a close-price frame (aligned bars):

* ``corr``: Pearson correlation of log returns (``shared.analytics.series.correlation_matrix``);
* ``eg_p_ab`` / ``eg_p_ba``: Engle-Granger p-values of A on B and of B on A
  (``shared.analytics.coint.engle_granger``: OLS with a constant, ADF without trend on the
  residuals, lag by AIC, MacKinnon p-value for 2 variables, as ``statsmodels...coint``). The pair
  is oriented (y, x) by the smaller p-value, whose regression gives ``beta``, ``alpha`` and the
  spread s = y - alpha - beta x;
* Johansen trace test (``shared.analytics.coint.johansen(det_order=0, k_ar_diff=1)``: constant,
  1 lagged difference): trace statistic for rank 0, its 5 % critical value and the rank at 5 %;
* ``half_life_bars`` and ``hurst`` of the spread (``shared.analytics.meanrev``);
* ``crossings_per_year``: sign changes of the spread (it has mean zero) per 24/7 year.

Filters (``ScreenCriteria``; defaults): Engle-Granger p (better ordering) < 0.05, Hurst < 0.5,
1 bar <= half-life <= 5 % of the sample, >= 12 zero crossings a year. Passing pairs are ranked by
p-value, then by half-life. ``coint_matrix``[i, j] is the p-value of column i regressed on column j.
Pairs are spread over ``workers`` processes; the price matrix is sent once per process.
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from shared.analytics.coint import engle_granger, johansen
from shared.analytics.meanrev import half_life, hurst
from shared.analytics.series import correlation_matrix
from shared.errors import InvalidInput
from shared.research.stats import bars_per_year

MIN_BARS = 100


@dataclass(frozen=True, slots=True)
class ScreenCriteria:
    max_pvalue: float = 0.05
    max_hurst: float = 0.5
    min_half_life_bars: float = 1.0
    max_half_life_frac: float = 0.05  # of the sample length
    min_crossings_per_year: float = 12.0

    def passes(self, row: dict, n_bars: int) -> bool:
        hl = row["half_life_bars"]
        return bool(
            row["eg_pvalue"] < self.max_pvalue
            and row["hurst"] < self.max_hurst
            and math.isfinite(hl)
            and self.min_half_life_bars <= hl <= self.max_half_life_frac * n_bars
            and row["crossings_per_year"] >= self.min_crossings_per_year
        )


@dataclass(frozen=True, eq=False)
class ScreenResult:
    """``table``: every pair, best first; ``ranked``: the pairs passing ``criteria`` in rank order."""

    table: pd.DataFrame
    ranked: pd.DataFrame
    corr_matrix: pd.DataFrame
    coint_matrix: pd.DataFrame
    criteria: ScreenCriteria
    n_bars: int
    timeframe: str


def _eg(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """(p-value, beta, alpha, residual y - alpha - beta x) of the Engle-Granger test of y on x."""
    try:
        res = engle_granger(y, x)
    except InvalidInput:  # a constant leg: no hedge, no test
        return math.nan, math.nan, math.nan, np.zeros_like(y)
    return res.pvalue, res.beta, res.alpha, y - res.alpha - res.beta * x


def _crossings(s: np.ndarray) -> int:
    signs = np.sign(s)
    signs = signs[signs != 0]
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


def _johansen(y: np.ndarray, x: np.ndarray) -> tuple[float, float, int]:
    """(trace statistic for rank 0, its 5 % critical value, rank at 5 %); NaN for singular moments."""
    try:
        res = johansen(np.column_stack([y, x]), det_order=0, k_ar_diff=1)
    except InvalidInput:  # an exact linear relation: the residual covariance is singular
        return math.nan, math.nan, 0
    return float(res.trace_stat[0]), float(res.trace_crit[0, 1]), int(res.rank_trace)


def _mean_reversion(spread: np.ndarray) -> tuple[float, float]:
    """(half-life in bars, Hurst exponent) of the spread; NaN where undefined (e.g. no reversion)."""
    try:
        hl = float(half_life(spread).half_life)
    except InvalidInput:
        hl = math.nan
    try:
        h = float(hurst(spread).h)
    except InvalidInput:
        h = math.nan
    return hl, h


def pair_metrics(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str, bpy: float) -> dict:
    """Every screening metric of one pair (see the module docstring)."""
    p_ab, beta_ab, alpha_ab, res_ab = _eg(a, b)
    p_ba, beta_ba, alpha_ba, res_ba = _eg(b, a)
    if not p_ba < p_ab:  # ties and NaN keep the input order
        y, x, p, beta, alpha, spread = name_a, name_b, p_ab, beta_ab, alpha_ab, res_ab
    else:
        y, x, p, beta, alpha, spread = name_b, name_a, p_ba, beta_ba, alpha_ba, res_ba
    trace, crit5, rank = _johansen(a, b)
    hl, h = _mean_reversion(spread)
    return {
        "y": y, "x": x, "eg_pvalue": p, "eg_p_ab": p_ab, "eg_p_ba": p_ba, "beta": beta, "alpha": alpha,
        "johansen_trace": trace, "johansen_crit5": crit5, "johansen_rank": rank,
        "half_life_bars": hl, "hurst": h, "crossings_per_year": _crossings(spread) * bpy / len(spread),
    }


_CTX: dict[str, object] = {}


def _init(prices: np.ndarray, names: list[str], bpy: float) -> None:
    _CTX.update(prices=prices, names=names, bpy=bpy)


def _chunk(pairs: list[tuple[int, int]]) -> list[dict]:
    prices: np.ndarray = _CTX["prices"]  # type: ignore[assignment]
    names: list[str] = _CTX["names"]  # type: ignore[assignment]
    out = []
    # The matrices here are tiny (2 columns, ~40 lags): multi-threaded BLAS only adds overhead,
    # several times the work itself on a busy machine, so each process uses one BLAS thread.
    with threadpool_limits(1):
        for i, j in pairs:
            row = pair_metrics(prices[:, i], prices[:, j], names[i], names[j], _CTX["bpy"])  # type: ignore[arg-type]
            row["a"], row["b"] = names[i], names[j]
            out.append(row)
    return out


def screen(closes: pd.DataFrame, timeframe: str = "1m", criteria: ScreenCriteria | None = None, *,
           workers: int = 1, chunk_size: int = 25, progress: bool = False) -> ScreenResult:
    """Screen every pair of ``closes`` (index: bar times, columns: instruments, aligned, positive)."""
    criteria = criteria if criteria is not None else ScreenCriteria()
    if workers < 1:
        raise InvalidInput(f"workers must be >= 1, got {workers}")
    names = [str(c) for c in closes.columns]
    if len(names) < 2 or len(set(names)) != len(names):
        raise InvalidInput("need at least 2 instruments with distinct names")
    prices = closes.to_numpy(np.float64)
    if len(prices) < MIN_BARS:
        raise InvalidInput(f"need at least {MIN_BARS} aligned bars, got {len(prices)}")
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0.0):
        raise InvalidInput("prices must be positive and finite (align the instruments first)")
    bpy = bars_per_year(timeframe)
    pairs = list(itertools.combinations(range(len(names)), 2))
    chunks = [pairs[k : k + chunk_size] for k in range(0, len(pairs), chunk_size)]
    rows: list[dict] = []
    bar = tqdm(total=len(pairs), desc="pairs", unit="pair", disable=not progress, leave=False)
    try:
        if workers == 1:
            _init(prices, names, bpy)
            for c in chunks:
                rows.extend(_chunk(c))
                bar.update(len(c))
        else:
            with ProcessPoolExecutor(workers, initializer=_init, initargs=(prices, names, bpy)) as pool:
                for c, res in zip(chunks, pool.map(_chunk, chunks), strict=True):
                    rows.extend(res)
                    bar.update(len(c))
    finally:
        bar.close()
    corr = correlation_matrix(closes.set_axis(names, axis=1), on="returns")
    table = pd.DataFrame(rows)
    table["corr"] = [float(corr.loc[a, b]) for a, b in zip(table["a"], table["b"], strict=True)]
    table["passed"] = [criteria.passes(r, len(prices)) for r in table.to_dict("records")]
    table = table.sort_values(["passed", "eg_pvalue", "half_life_bars"], ascending=[False, True, True],
                              kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.where(table["passed"], np.arange(1, len(table) + 1), 0))
    coint = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b, p_ab, p_ba in zip(table["a"], table["b"], table["eg_p_ab"], table["eg_p_ba"], strict=True):
        coint.loc[a, b], coint.loc[b, a] = p_ab, p_ba
    ranked = table[table["passed"]].reset_index(drop=True)
    return ScreenResult(table, ranked, corr, coint, criteria, len(prices), timeframe)


