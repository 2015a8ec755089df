"""Cointegration tests: Engle-Granger (two-step) and Johansen, plus a pairwise p-value matrix.

``engle_granger`` matches ``statsmodels.tsa.stattools.coint`` and ``johansen`` matches
``statsmodels.tsa.vector_ar.vecm.coint_johansen`` on the same inputs. Critical values come from
statsmodels' published tables (MacKinnon 2010 for Engle-Granger, MacKinnon-Haug-Michelis 1999 for
Johansen); the regressions and eigenproblems are computed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg
from statsmodels.tsa.coint_tables import c_sja, c_sjt

from shared.analytics.adf import adf, mackinnon_critical_values, mackinnon_pvalue
from shared.analytics.validation import as_float_array, as_pair, check_choice, check_min_points
from shared.errors import InvalidInput

Trend = Literal["c", "ct"]
_SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)


@dataclass(frozen=True, slots=True)
class EngleGrangerResult:
    """Augmented Engle-Granger test of H0 "no cointegration" for y on x.

    ``beta``/``alpha`` are the cointegrating regression ``y = alpha + beta x (+ trend)``;
    ``stat`` is the ADF t-value on its residuals (no deterministic terms), ``pvalue`` MacKinnon's.
    ``stat`` is ``-inf`` (p-value 0) when y and x are almost perfectly collinear, as in statsmodels.
    """

    stat: float
    pvalue: float
    critical_values: MappingProxyType[str, float]
    beta: float
    alpha: float
    used_lag: int
    nobs: int
    trend: str
    resid_std: float

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__slots__}
        out["critical_values"] = dict(self.critical_values)
        return out


@dataclass(frozen=True, slots=True)
class JohansenResult:
    """Johansen trace and maximum-eigenvalue tests; row i tests H0 "rank <= i".

    ``trace_crit``/``max_eig_crit`` columns are the 90 %, 95 %, 99 % critical values.
    ``vectors`` columns are the eigenvectors (normalised so that v' S_kk v = 1, first entry
    positive), ordered like ``eigenvalues`` (descending). ``coint_vector`` is the first one scaled
    so its first entry is 1: the spread ``data @ coint_vector`` is the most stationary combination.
    """

    trace_stat: np.ndarray
    trace_crit: np.ndarray
    max_eig_stat: np.ndarray
    max_eig_crit: np.ndarray
    eigenvalues: np.ndarray
    vectors: np.ndarray
    rank_trace: int
    rank_max_eig: int
    coint_vector: np.ndarray
    det_order: int
    k_ar_diff: int
    nobs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            f: (v.tolist() if isinstance(v, np.ndarray) else v)
            for f in self.__slots__
            if (v := getattr(self, f)) is not None
        }


def _cointegrating_regression(y: np.ndarray, x: np.ndarray, trend: str) -> tuple[np.ndarray, np.ndarray, float]:
    """OLS of y on [x, 1(, t)] -> (params, residuals, R^2), via lstsq (QR/SVD, no normal equations)."""
    cols = [x, np.ones_like(x)]
    if trend == "ct":
        cols.append(np.arange(1, x.shape[0] + 1, dtype=float))
    design = np.column_stack(cols)
    params, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ params
    centered = y - y.mean()
    tss = float(centered @ centered)
    r2 = 1.0 - float(resid @ resid) / tss if tss > 0 else 1.0
    return params, resid, r2


def engle_granger(
    y: Any,
    x: Any,
    trend: Trend = "c",
    maxlag: int | None = None,
    autolag: str | None = "aic",
) -> EngleGrangerResult:
    """Augmented Engle-Granger cointegration test of ``y`` on ``x``.

    Parameters
    ----------
    y, x : array_like, 1-D, equal lengths
        Price (or log-price) levels; x must not be constant.
    trend : {"c", "ct"}
        Deterministic terms of the cointegrating regression.
    maxlag, autolag
        Passed to :func:`shared.analytics.adf.adf` for the residual test (regression "n").

    Notes
    -----
    Step 1: :math:`y_t = \\alpha + \\beta x_t + u_t` by OLS. Step 2: ADF without deterministic
    terms on :math:`\\hat u_t`. The p-value and critical values are MacKinnon's for two series,
    the critical values at ``nobs - 1`` like statsmodels (and Stata's ``egranger``).
    """
    check_choice(trend, ("c", "ct"), "trend")
    ya, xa = as_pair(y, x, min_points=10)
    params, resid, r2 = _cointegrating_regression(ya, xa, trend)
    nobs = ya.shape[0]
    if r2 < 1.0 - 100.0 * _SQRT_EPS:
        res = adf(resid, regression="n", maxlag=maxlag, autolag=autolag)  # type: ignore[arg-type]
        stat, used_lag = res.stat, res.used_lag
    else:
        stat, used_lag = -math.inf, 0  # exact collinearity: the residual has no unit root to test
    dof = nobs - len(params)
    return EngleGrangerResult(
        stat=stat,
        pvalue=mackinnon_pvalue(stat, trend, n_series=2),
        critical_values=mackinnon_critical_values(trend, nobs - 1, n_series=2),
        beta=float(params[0]),
        alpha=float(params[1]),
        used_lag=used_lag,
        nobs=nobs,
        trend=trend,
        resid_std=float(math.sqrt(resid @ resid / dof)) if dof > 0 else math.nan,
    )


def _partial_out(target: np.ndarray, regressors: np.ndarray) -> np.ndarray:
    """Residuals of the least-squares projection of every column of ``target`` on ``regressors``."""
    if regressors.shape[1] == 0:
        return target
    coef, *_ = np.linalg.lstsq(regressors, target, rcond=None)
    return target - regressors @ coef


def _time_polynomial(nobs: int, order: int) -> np.ndarray:
    """Columns 1, t, ... t^order on [-1, 1] (statsmodels' detrending basis); empty for order -1."""
    if order < 0:
        return np.empty((nobs, 0))
    return np.vander(np.linspace(-1.0, 1.0, nobs), order + 1)


def johansen(data: Any, det_order: int = 0, k_ar_diff: int = 1) -> JohansenResult:
    """Johansen cointegration rank tests on a ``T x k`` array (or DataFrame) of levels.

    Parameters
    ----------
    data : array_like, shape (T, k), k >= 2
    det_order : {-1, 0, 1}
        -1 none, 0 constant, 1 linear trend (the statsmodels convention: the levels are detrended
        with a polynomial of this order, the differences with a constant when ``det_order >= 0``).
    k_ar_diff : int >= 0
        Lagged differences in the VECM.

    Notes
    -----
    Reduced-rank regression: residuals :math:`R_0` (differences) and :math:`R_1` (lagged levels)
    after partialling out the lagged differences; eigenvalues solve
    :math:`|\\lambda S_{11} - S_{10} S_{00}^{-1} S_{01}| = 0`. Trace statistic
    :math:`-T \\sum_{i>r} \\ln(1-\\lambda_i)`, max-eigenvalue :math:`-T \\ln(1-\\lambda_{r+1})`.
    """
    if det_order not in (-1, 0, 1):
        raise InvalidInput(f"det_order must be -1, 0 or 1 (critical values exist only for these), got {det_order!r}")
    if isinstance(k_ar_diff, bool) or not isinstance(k_ar_diff, int) or k_ar_diff < 0:
        raise InvalidInput(f"k_ar_diff must be a non-negative integer, got {k_ar_diff!r}")
    levels = _as_matrix(data)
    nobs_total, neqs = levels.shape
    check_min_points(nobs_total, k_ar_diff + neqs + 4, f"Johansen test on {neqs} series")

    levels = _partial_out(levels, _time_polynomial(nobs_total, det_order))
    diff_order = 0 if det_order > -1 else -1
    dx = np.diff(levels, axis=0)
    lagged = np.column_stack([dx[k_ar_diff - i : dx.shape[0] - i] for i in range(1, k_ar_diff + 1)]) if k_ar_diff else None
    dx = dx[k_ar_diff:]
    nobs = dx.shape[0]
    lagged = np.empty((nobs, 0)) if lagged is None else _partial_out(lagged, _time_polynomial(nobs, diff_order))
    r0 = _partial_out(_partial_out(dx, _time_polynomial(nobs, diff_order)), lagged)
    lvl = levels[1 : nobs_total - k_ar_diff]
    r1 = _partial_out(_partial_out(lvl, _time_polynomial(nobs, diff_order)), lagged)

    s11 = r1.T @ r1 / nobs
    s10 = r1.T @ r0 / nobs
    s00 = r0.T @ r0 / nobs
    try:
        eigvals, vecs = scipy.linalg.eigh(s10 @ np.linalg.solve(s00, s10.T), s11)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        raise InvalidInput("Johansen moment matrices are singular (collinear or constant series)") from None
    order = np.argsort(eigvals)[::-1]
    eigvals = np.clip(eigvals[order], 0.0, 1.0 - 1e-15)
    vecs = vecs[:, order]
    vecs = vecs * np.where(vecs[0] < 0, -1.0, 1.0)

    log_keep = np.log1p(-eigvals)
    trace_stat = -nobs * np.cumsum(log_keep[::-1])[::-1]
    max_eig_stat = -nobs * log_keep
    trace_crit = np.array([c_sjt(neqs - i, det_order) for i in range(neqs)], dtype=float)
    max_eig_crit = np.array([c_sja(neqs - i, det_order) for i in range(neqs)], dtype=float)
    lead = vecs[0, 0]
    return JohansenResult(
        trace_stat=trace_stat,
        trace_crit=trace_crit,
        max_eig_stat=max_eig_stat,
        max_eig_crit=max_eig_crit,
        eigenvalues=eigvals,
        vectors=vecs,
        rank_trace=_rank(trace_stat, trace_crit[:, 1]),
        rank_max_eig=_rank(max_eig_stat, max_eig_crit[:, 1]),
        coint_vector=vecs[:, 0] / lead if lead != 0 else np.full(neqs, math.nan),
        det_order=det_order,
        k_ar_diff=k_ar_diff,
        nobs=nobs,
    )


def _rank(stats: np.ndarray, crit_95: np.ndarray) -> int:
    """Sequential testing: the first r whose H0 "rank <= r" is not rejected at 5 %."""
    for r, (stat, crit) in enumerate(zip(stats, crit_95, strict=True)):
        if stat <= crit:
            return r
    return len(stats)


def _as_matrix(data: Any) -> np.ndarray:
    raw = data.to_numpy() if hasattr(data, "to_numpy") else data
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"data must contain only numbers ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InvalidInput(f"data must be a 2-D array with at least 2 columns (series), got shape {arr.shape}")
    for j in range(arr.shape[1]):
        as_float_array(arr[:, j], f"data column {j}")
    return arr


def cointegration_matrix(prices: Mapping[str, Any] | pd.DataFrame, trend: Trend = "c") -> pd.DataFrame:
    """Engle-Granger p-values for every ordered pair of series.

    Orientation: ``out.loc[a, b]`` is the p-value of the test with ``a`` as the dependent series
    (y) regressed on ``b`` (x). The matrix is not symmetric, because Engle-Granger depends on which
    leg is dependent; the diagonal is NaN. Series must be aligned (equal lengths, same timestamps).
    """
    frame = prices if isinstance(prices, pd.DataFrame) else pd.DataFrame(
        {str(k): as_float_array(v, f"prices[{k!r}]") for k, v in _equal_length(prices).items()}
    )
    names = [str(c) for c in frame.columns]
    if len(names) < 2:
        raise InvalidInput(f"a cointegration matrix needs at least 2 series, got {len(names)}")
    columns = {name: as_float_array(frame.iloc[:, i], f"prices[{name!r}]") for i, name in enumerate(names)}
    out = pd.DataFrame(np.nan, index=names, columns=names)
    for a in names:
        for b in names:
            if a != b:
                out.loc[a, b] = engle_granger(columns[a], columns[b], trend=trend).pvalue
    return out


def _equal_length(prices: Mapping[str, Any]) -> Mapping[str, Any]:
    lengths = {k: len(v) for k, v in prices.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInput(f"all series must have equal lengths, got {lengths}")
    return prices
