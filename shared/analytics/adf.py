"""Augmented Dickey-Fuller unit-root test, numerically identical to ``statsmodels`` ``adfuller``.

The speed comes from fitting every candidate lag length at once: the regressions of the lag
search are nested (each adds one column to the previous one), so one Cholesky factor ``R`` of the
Gram matrix of ``[X | y]`` holds them all. With ``r = R[:, -1]`` the residual sum of squares of the
model on the first ``j`` columns is ``sum(r[j:] ** 2)``, and the t-value of its last coefficient is
``r[j-1] / sqrt(ssr_j / (nobs - j))``. No per-lag regression is ever run.

With a constant in the model, every column is first demeaned (and detrended for ``"ct"``): an exact
reparametrisation (Frisch-Waugh) that keeps the Gram matrix well conditioned even for price levels
far from zero.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from scipy.linalg.lapack import dpotrf
from statsmodels.tsa import adfvalues

from shared.analytics.validation import as_float_array, check_min_points
from shared.errors import InvalidInput

Regression = Literal["n", "c", "ct"]
Autolag = Literal["AIC", "BIC", "t-stat"]

_N_TREND = {"n": 0, "c": 1, "ct": 2}
_AUTOLAG = {"aic": "AIC", "bic": "BIC", "t-stat": "t-stat"}
_LOG_2PI = math.log(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_T_STOP = 1.6448536269514722  # one-sided 5 % normal quantile, adfuller's t-stat stopping rule


@dataclass(frozen=True, slots=True)
class ADFResult:
    """Outcome of :func:`adf`. ``nobs`` is the sample of the final regression (after lags)."""

    stat: float
    pvalue: float
    critical_values: MappingProxyType[str, float]
    used_lag: int
    nobs: int
    regression: str
    autolag: str | None
    icbest: float | None
    maxlag: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stat": self.stat,
            "pvalue": self.pvalue,
            "critical_values": dict(self.critical_values),
            "used_lag": self.used_lag,
            "nobs": self.nobs,
            "regression": self.regression,
            "autolag": self.autolag,
            "icbest": self.icbest,
            "maxlag": self.maxlag,
        }


@lru_cache(maxsize=64)
def _surface(regression: str, n_series: int, small: bool) -> tuple[float, ...]:
    """Coefficients of one p-value surface, highest power first, as Python floats (Horner-ready)."""
    table = adfvalues._tau_smallps if small else adfvalues._tau_largeps
    return tuple(float(c) for c in table[regression][n_series - 1][::-1])


def mackinnon_pvalue(stat: float, regression: str, n_series: int = 1) -> float:
    """MacKinnon (1994) approximate p-value, the same surface and cut-offs as statsmodels' ``mackinnonp``.

    Evaluated directly on statsmodels' coefficient tables: ``mackinnonp`` itself spends most of its
    time in ``scipy.stats.norm`` dispatch, which would be the dominant cost of a fast ADF.
    """
    i = n_series - 1
    if math.isnan(stat):
        return math.nan
    if stat > adfvalues._tau_maxs[regression][i]:
        return 1.0
    if stat < adfvalues._tau_mins[regression][i]:
        return 0.0
    value = 0.0
    for coef in _surface(regression, n_series, stat <= adfvalues._tau_stars[regression][i]):
        value = value * stat + coef
    return 0.5 * math.erfc(-value * _INV_SQRT2)  # the standard normal cdf (scipy's ndtr, minus its dispatch)


@lru_cache(maxsize=4096)
def mackinnon_critical_values(regression: str, nobs: int, n_series: int = 1) -> MappingProxyType[str, float]:
    """MacKinnon (2010) finite-sample 1/5/10 % critical values (statsmodels ``mackinnoncrit``)."""
    crit = adfvalues.mackinnoncrit(N=n_series, regression=regression, nobs=nobs)
    return MappingProxyType({"1%": float(crit[0]), "5%": float(crit[1]), "10%": float(crit[2])})


def default_maxlag(nobs: int, regression: str) -> int:
    """Schwert's rule 12 * (nobs/100)^(1/4), capped so the regression keeps enough observations."""
    maxlag = min(int(math.ceil(12.0 * (nobs / 100.0) ** 0.25)), nobs // 2 - _N_TREND[regression] - 1)
    if maxlag < 0:
        raise InvalidInput(f"series too short for an ADF test with regression {regression!r}: {nobs} points")
    return maxlag


def _checked_maxlag(maxlag: Any, n: int, ntrend: int) -> int:
    if type(maxlag) is not int and (isinstance(maxlag, bool) or not isinstance(maxlag, numbers.Integral)):
        raise InvalidInput(f"maxlag must be a non-negative integer, got {maxlag!r}")
    if maxlag < 0:
        raise InvalidInput(f"maxlag must be a non-negative integer, got {maxlag!r}")
    if maxlag > n // 2 - ntrend - 1:
        raise InvalidInput(f"maxlag={maxlag} too large for {n} points: at most n // 2 - 1 - ntrend = {n // 2 - ntrend - 1}")
    return int(maxlag)


def _design(x: np.ndarray, dx: np.ndarray, n_lags: int, regression: str, level_first: bool) -> np.ndarray:
    """The regression, transposed (one contiguous row per regressor, ``y`` last).

    Rows: deterministic terms, then ``[level, lag 1..n_lags]`` or ``[lag 1..n_lags, level]``.
    The level is shifted by its sample mean and the trend centred, an exact reparametrisation
    when a constant is present that keeps the Gram matrix well conditioned for price levels.
    """
    nobs = dx.shape[0] - n_lags
    ntrend = _N_TREND[regression]
    out = np.empty((ntrend + n_lags + 2, nobs))
    if ntrend:
        out[0] = 1.0
        if ntrend == 2:
            out[1] = np.arange(nobs, dtype=float) - (nobs - 1) / 2.0
    level = x[n_lags:-1]
    level_row = ntrend if level_first else ntrend + n_lags
    out[level_row] = level - level.sum() / nobs if ntrend else level
    # windows[i] = dx[i : i + nobs], which is lag n_lags - i (a zero-copy view; one block copy below)
    windows = np.ndarray((n_lags + 1, nobs), dtype=np.float64, buffer=dx, strides=(8, 8))
    if level_first:
        if n_lags:
            out[ntrend + 1 : -1] = windows[n_lags - 1 :: -1]
    else:
        out[ntrend : ntrend + n_lags] = windows[:n_lags]
    out[-1] = dx[n_lags:]
    return out


def _factor(design_t: np.ndarray) -> np.ndarray:
    """Upper-triangular R with R'R = X'X for X = design_t.T (the R of a QR of X, up to row signs)."""
    # LAPACK directly: numpy's wrapper costs more than the factorisation of a 25 x 25 matrix.
    r_mat, info = dpotrf(design_t @ design_t.T, lower=0, clean=1, overwrite_a=1)
    if info != 0:
        raise InvalidInput("ADF regressors are collinear (series too short or degenerate)")
    return r_mat


def _last_tvalue(r_mat: np.ndarray, ssr_tail: np.ndarray, j: int, df: int) -> float:
    return float(r_mat[j - 1, -1] / math.sqrt(ssr_tail[j] / df)) if ssr_tail[j] > 0 else math.inf


def _select_lag(x: np.ndarray, dx: np.ndarray, regression: str, maxlag: int, method: str) -> tuple[int, float]:
    """The lag chosen by adfuller's search, all candidates fitted on the same (shortest) sample."""
    design_t = _design(x, dx, maxlag, regression, level_first=True)
    nobs = design_t.shape[1]
    ntrend = _N_TREND[regression]
    r_mat = _factor(design_t)
    # ssr_tail[c] = SSR of the model holding the first c columns (deterministic terms included).
    ssr_tail = np.cumsum((r_mat[:, -1] ** 2)[::-1])[::-1]
    if method == "t-stat":
        for n_lags in range(maxlag, -1, -1):
            c = ntrend + n_lags + 1
            tval = abs(_last_tvalue(r_mat, ssr_tail, c, nobs - c))
            if tval >= _T_STOP:
                break
        return n_lags, tval
    ssr = ssr_tail[ntrend + 1 : ntrend + maxlag + 2]
    n_params = np.arange(1, maxlag + 2) + ntrend
    llf = -0.5 * nobs * (_LOG_2PI + np.log(ssr / nobs) + 1.0)
    penalty = 2.0 if method == "AIC" else math.log(nobs)
    ic = -2.0 * llf + penalty * n_params
    best = int(np.argmin(ic))  # first minimum, i.e. the shortest lag on ties (as adfuller)
    return best, float(ic[best])


def adf(
    series: Any,
    regression: Regression = "c",
    maxlag: int | None = None,
    autolag: Autolag | None = "AIC",
) -> ADFResult:
    """Augmented Dickey-Fuller test of a unit root in ``series``.

    Parameters
    ----------
    series : array_like, 1-D
        The observations, finite, not constant.
    regression : {"n", "c", "ct"}
        Deterministic terms: none, constant, constant and linear trend.
    maxlag : int, optional
        Largest lag of the differences; default ``12 * (nobs/100)^(1/4)`` (Schwert), capped at
        ``nobs // 2 - ntrend - 1`` like statsmodels.
    autolag : {"AIC", "BIC", "t-stat"} or None
        Lag search over ``0..maxlag`` on a common sample, then the chosen lag is refitted on the
        full available sample. ``None`` uses ``maxlag`` lags.

    Returns
    -------
    ADFResult
        Statistic (t-value of the lagged level), MacKinnon p-value and critical values, used lag,
        observations of the final regression, and the best information criterion (or, for
        ``"t-stat"``, the absolute t-value of the last lag kept).

    Notes
    -----
    Model: :math:`\\Delta x_t = d_t + \\gamma x_{t-1} + \\sum_{i=1}^{p} \\phi_i \\Delta x_{t-i} + e_t`.
    H0: :math:`\\gamma = 0` (unit root). Matches ``statsmodels.tsa.stattools.adfuller``.
    """
    if regression not in _N_TREND:
        raise InvalidInput(f"unknown regression {regression!r}; choose one of n, c, ct")
    method: str | None = None
    if autolag is not None:
        method = _AUTOLAG.get(str(autolag).lower())
        if method is None:
            raise InvalidInput(f"unknown autolag {autolag!r}; choose one of AIC, BIC, t-stat or None")
    x = as_float_array(series, "series")
    n = x.shape[0]
    ntrend = _N_TREND[regression]
    check_min_points(n, 4 + ntrend, "ADF series")
    maxlag = default_maxlag(n, regression) if maxlag is None else _checked_maxlag(maxlag, n, ntrend)
    dx = x[1:] - x[:-1]
    if not dx.any():  # the cheap form of "constant": every difference is zero
        raise InvalidInput(f"series is constant (every value is {x[0]!r}); a unit-root test is undefined")
    icbest: float | None = None
    used_lag = maxlag
    if method is not None:
        used_lag, icbest = _select_lag(x, dx, regression, maxlag, method)
    design = _design(x, dx, used_lag, regression, level_first=False)
    nobs = design.shape[1]
    r_mat = _factor(design)
    k = used_lag + 1 + ntrend
    ssr = float(r_mat[-1, -1] ** 2)
    stat = float(r_mat[-2, -1] / math.sqrt(ssr / (nobs - k))) if ssr > 0 else -math.inf
    return ADFResult(
        stat=stat,
        pvalue=mackinnon_pvalue(stat, regression),
        critical_values=mackinnon_critical_values(regression, nobs),
        used_lag=used_lag,
        nobs=nobs,
        regression=regression,
        autolag=method,
        icbest=icbest,
        maxlag=maxlag,
    )
