"""Mean-reversion diagnostics of a spread: AR(1)/Ornstein-Uhlenbeck half-life and the Hurst exponent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.analytics.adf import mackinnon_pvalue
from shared.analytics.validation import as_float_array, check_min_points, check_not_constant
from shared.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class HalfLifeResult:
    """AR(1) fit ``ds_t = a + b s_{t-1} + e_t`` of a spread.

    ``half_life`` is in observations (bars): ``-ln 2 / ln(1 + b)`` when ``-1 < b < 0``; ``inf`` when
    ``b >= 0`` (no mean reversion); ``nan`` when ``b <= -1`` (``phi = 1 + b <= 0``: the spread
    overshoots every bar, so a decay time is undefined). ``phi`` is the AR(1) coefficient,
    ``kappa = -ln(phi)`` the OU speed per observation (nan when ``phi <= 0``). ``tstat`` is the OLS
    t-value of ``b``; under H0 ``b = 0`` it follows the Dickey-Fuller distribution, so ``pvalue``
    is MacKinnon's (the same as an ADF with a constant and no lags), not a Student-t p-value.
    """

    half_life: float
    b: float
    phi: float
    kappa: float
    intercept: float
    mean: float
    tstat: float
    pvalue: float
    resid_std: float
    nobs: int

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(frozen=True, slots=True)
class HurstResult:
    """Hurst exponent ``h`` with the lags and scale values it was fitted on.

    ``scale[i]`` is the root-mean-square of ``x[t + lags[i]] - x[t]``; ``h`` is the slope of
    ``log scale`` on ``log lag``, ``intercept`` the fit's intercept, ``r2`` its R^2.
    """

    h: float
    intercept: float
    r2: float
    lags: tuple[int, ...]
    scale: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"h": self.h, "intercept": self.intercept, "r2": self.r2, "lags": list(self.lags), "scale": list(self.scale)}


def half_life(spread: Any) -> HalfLifeResult:
    """Half-life of mean reversion from the OLS fit of ``ds_t = a + b s_{t-1} + e_t``.

    Parameters
    ----------
    spread : array_like, 1-D, at least 4 finite, non-constant values.

    Notes
    -----
    The discrete AR(1) :math:`s_t = a + \\phi s_{t-1} + e_t` with :math:`\\phi = 1 + b` decays a
    shock by :math:`\\phi^h`; solving :math:`\\phi^h = 1/2` gives :math:`h = -\\ln 2 / \\ln \\phi`.
    The long-run mean is :math:`a / (1 - \\phi)`.
    """
    s = as_float_array(spread, "spread")
    check_min_points(s.shape[0], 4, "half-life spread")
    check_not_constant(s, "spread")
    lagged = s[:-1]
    ds = np.diff(s)
    nobs = ds.shape[0]
    # Centre the regressor: the slope and its standard error are unchanged, the fit is well conditioned.
    lag_mean = lagged.mean()
    lc = lagged - lag_mean
    sxx = float(lc @ lc)
    if sxx == 0.0:
        raise InvalidInput("spread is constant over its lagged values; the AR(1) slope is undefined")
    b = float(lc @ ds) / sxx
    a = float(ds.mean()) - b * lag_mean
    resid = ds - a - b * lagged
    dof = nobs - 2
    sigma2 = float(resid @ resid) / dof
    se = math.sqrt(sigma2 / sxx)
    tstat = b / se if se > 0 else (-math.inf if b < 0 else math.inf)
    phi = 1.0 + b
    if phi >= 1.0:
        hl = math.inf
    elif phi <= 0.0:
        hl = math.nan
    else:
        hl = -math.log(2.0) / math.log(phi)
    return HalfLifeResult(
        half_life=hl,
        b=b,
        phi=phi,
        kappa=-math.log(phi) if phi > 0 else math.nan,
        intercept=a,
        mean=a / -b if b != 0 else math.nan,
        tstat=tstat,
        pvalue=mackinnon_pvalue(tstat, "c"),
        resid_std=math.sqrt(sigma2),
        nobs=nobs,
    )


def hurst(series: Any, min_lag: int = 2, max_lag: int | None = None) -> HurstResult:
    """Hurst exponent by the scaling of lagged differences (generalised Hurst exponent, q = 2).

    For lags ``tau`` in ``min_lag..max_lag`` the RMS of ``x[t+tau] - x[t]`` scales as
    ``tau ** h``. A random walk gives ``h = 0.5``; a mean-reverting series ``h < 0.5`` (its
    differences saturate); a trending or persistent series ``h > 0.5``. The differences are not
    demeaned, so a deterministic drift counts as trend (a straight line gives exactly 1).

    Parameters
    ----------
    series : array_like, 1-D (a price, log-price or spread level, not returns)
    min_lag : int >= 1
    max_lag : int, optional
        Default ``min(100, n // 4)``, so every lag keeps at least 3/4 of the sample.
    """
    x = as_float_array(series, "series")
    n = x.shape[0]
    if isinstance(min_lag, bool) or not isinstance(min_lag, int) or min_lag < 1:
        raise InvalidInput(f"min_lag must be an integer >= 1, got {min_lag!r}")
    if max_lag is None:
        max_lag = min(100, n // 4)
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < min_lag + 1:
        raise InvalidInput(
            f"max_lag must be an integer > min_lag={min_lag} (need at least two lags), got {max_lag!r}"
            + (f"; the series has only {n} points" if n // 4 <= min_lag else "")
        )
    check_min_points(n, max_lag + 2, f"Hurst exponent with max_lag={max_lag}")
    check_not_constant(x, "series")
    lags = np.arange(min_lag, max_lag + 1)
    scale = np.array([math.sqrt(float(np.mean((x[lag:] - x[:-lag]) ** 2))) for lag in lags])
    if np.any(scale == 0.0):
        raise InvalidInput("series repeats itself at some lag (zero differences); the Hurst exponent is undefined")
    log_lag = np.log(lags)
    log_scale = np.log(scale)
    slope, intercept = np.polyfit(log_lag, log_scale, 1)
    fitted = intercept + slope * log_lag
    ss_res = float(np.sum((log_scale - fitted) ** 2))
    ss_tot = float(np.sum((log_scale - log_scale.mean()) ** 2))
    return HurstResult(
        h=float(slope),
        intercept=float(intercept),
        r2=1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        lags=tuple(int(v) for v in lags),
        scale=tuple(float(v) for v in scale),
    )
