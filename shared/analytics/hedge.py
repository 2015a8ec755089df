"""Hedge ratios of y on x: OLS, rolling OLS (with a liquidity filter), Huber, Theil-Sen, and a
dispatcher with a common result.

All fits work on data centered at the regressor's mean, which keeps them exact to rounding at
BTC-scale prices (x ~ 1e5 with a small variance) where the uncentered normal equations lose most
of their digits.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from shared.analytics.kalman import kalman_hedge
from shared.analytics.series import RollingComoments, rolling_comoments
from shared.analytics.validation import (
    FloatArray,
    as_float_array,
    as_pair,
    check_choice,
    check_positive,
    check_window,
)
from shared.errors import InvalidInput


@dataclass(frozen=True)
class OLSResult:
    """OLS fit of ``y = alpha + beta * x + e`` (``alpha`` is 0.0 without intercept)."""

    beta: float
    alpha: float
    r2: float
    resid_std: float
    nobs: int
    intercept: bool


def ols(y: Any, x: Any, intercept: bool = True) -> OLSResult:
    """Ordinary least squares hedge ratio.

    Notes
    -----
    With intercept: ``beta = Sxy / Sxx`` on centered sums, ``alpha = mean(y) - beta mean(x)``,
    ``r2 = 1 - SSR / sum((y - mean y)^2)``. Without intercept: ``beta = sum(xy) / sum(x^2)`` and
    ``r2 = 1 - SSR / sum(y^2)`` (uncentered, as statsmodels reports for a model without
    constant). ``resid_std = sqrt(SSR / (n - k))`` with k = 2 or 1 parameters (statsmodels'
    ``sqrt(scale)``), so at least k + 1 points are needed.

    An exact fit (e.g. ``y = 2 x``) gives ``resid_std`` 0 (up to rounding) and ``r2`` 1. A
    constant ``y`` with intercept gives beta 0 and ``r2`` NaN (0/0: there is no variation to
    explain). A constant ``x`` with intercept, or an all-zero ``x`` without, raises.
    """
    k = 2 if intercept else 1
    ya, xa = as_pair(y, x, min_points=k + 1, x_not_constant=intercept)
    n = ya.shape[0]
    if intercept:
        mx, my = float(np.mean(xa)), float(np.mean(ya))
        dx, dy = xa - mx, ya - my
        beta = float(np.dot(dx, dy) / np.dot(dx, dx))
        alpha = my - beta * mx
        resid = dy - beta * dx
        tss = float(np.dot(dy, dy))
    else:
        sxx = float(np.dot(xa, xa))
        if sxx == 0.0:
            raise InvalidInput("x is all zeros; a regression through the origin is undefined")
        beta = float(np.dot(xa, ya) / sxx)
        alpha = 0.0
        resid = ya - beta * xa
        tss = float(np.dot(ya, ya))
    ssr = float(np.dot(resid, resid))
    r2 = 1.0 - ssr / tss if tss > 0.0 else math.nan
    return OLSResult(
        beta=beta, alpha=alpha, r2=r2, resid_std=math.sqrt(ssr / (n - k)), nobs=n, intercept=intercept
    )


@dataclass(frozen=True, eq=False)
class RollingOLSResult:
    """Per-bar rolling OLS with intercept, aligned to the window's last bar (NaN when undefined).

    ``nobs`` is the number of bars that entered each window's regression.
    """

    beta: FloatArray
    alpha: FloatArray
    r2: FloatArray
    nobs: FloatArray
    window: int


def _liquidity_mask(volume: Any, n: int, min_volume: float) -> np.ndarray:
    """True for bars whose volume is >= ``min_volume`` on every leg given."""
    legs = volume if isinstance(volume, (tuple, list)) and len(volume) == 2 and np.ndim(volume[0]) == 1 else (volume,)
    mask = np.ones(n, dtype=bool)
    for i, leg in enumerate(legs):
        v = as_float_array(leg, f"volume[{i}]" if len(legs) == 2 else "volume")
        if v.shape[0] != n:
            raise InvalidInput(f"volume must have the length of the prices, got {v.shape[0]} and {n}")
        if (v < 0.0).any():
            raise InvalidInput(f"volume must be >= 0, got {float(v[np.argmax(v < 0.0)])!r}")
        mask &= v >= min_volume
    return mask


def rolling_ols(
    y: Any,
    x: Any,
    window: int,
    min_volume: float | None = None,
    volume: Any = None,
    *,
    min_periods: int | None = None,
) -> RollingOLSResult:
    """Rolling OLS (with intercept) over trailing windows of ``window`` bars.

    Parameters
    ----------
    window
        Bars per window (a fixed span of time for regular bars).
    min_volume, volume
        Liquidity filter. ``volume`` is one array (applied to the bar as a whole) or a pair
        ``(volume_y, volume_x)``. A bar is *excluded* from every window that contains it when the
        volume of **either** leg is strictly below ``min_volume`` (a pair trade needs both legs
        to be liquid). The window still spans ``window`` bars; only the kept bars are regressed.
    min_periods
        Minimum number of kept bars for a result (default ``window``, as pandas). Lower it when
        filtering, otherwise any illiquid bar blanks the ``window`` results that contain it. As
        in pandas, with ``min_periods < window`` the first windows may be partial (bars 0..t).

    Returns NaN where fewer than ``max(min_periods, 2)`` bars were kept or x is constant over the
    kept bars; ``r2`` is NaN where y is constant (see :func:`ols`).
    """
    ya, xa = as_pair(y, x, min_points=2, x_not_constant=False)
    n = ya.shape[0]
    w = check_window(window, n)
    need = w if min_periods is None else check_window(min_periods, minimum=2)
    if need > w:
        raise InvalidInput(f"min_periods {need} exceeds the window {w}")
    mask = None
    if min_volume is not None or volume is not None:
        if min_volume is None or volume is None:
            raise InvalidInput("the liquidity filter needs both min_volume and volume")
        mask = _liquidity_mask(volume, n, check_positive(min_volume, "min_volume", allow_zero=True))
    if need < w:
        # Partial windows at the start count too (as pandas with min_periods): pad w - 1 masked bars.
        pad = np.zeros(w - 1)
        keep = np.ones(n, dtype=bool) if mask is None else mask
        m = rolling_comoments(
            np.concatenate([pad, xa]), np.concatenate([pad, ya]), w, np.concatenate([pad.astype(bool), keep])
        )
        m = RollingComoments(*(getattr(m, f.name)[w - 1 :] for f in fields(RollingComoments)))
    else:
        m = rolling_comoments(xa, ya, w, mask)
    ok = (m.count >= need) & (m.sxx > 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(ok, m.sxy / m.sxx, np.nan)
        alpha = m.mean_y - beta * m.mean_x
        ssr = np.maximum(m.syy - beta * m.sxy, 0.0)
        r2 = np.where(m.syy > 0.0, 1.0 - ssr / m.syy, np.nan)
    r2 = np.where(ok, np.minimum(r2, 1.0), np.nan)
    return RollingOLSResult(beta=beta, alpha=alpha, r2=r2, nobs=m.count, window=w)


@dataclass(frozen=True)
class RobustResult:
    """A robust straight-line fit ``y = alpha + beta * x``.

    ``scale`` is the robust residual scale (Huber: the jointly estimated sigma; Theil-Sen: the
    normalised MAD of the residuals, ``1.4826 * median|r - median r|``).
    """

    beta: float
    alpha: float
    scale: float
    nobs: int
    method: str


def huber(
    y: Any, x: Any, epsilon: float = 1.35, *, max_iter: int = 200, tol: float = 1e-10
) -> RobustResult:
    """Huber regression with concomitant scale, the objective of scikit-learn's ``HuberRegressor``
    with ``alpha=0`` (no ridge penalty) and the same ``epsilon``.

    Notes
    -----
    Minimises over (alpha, beta, sigma > 0)::

        sum_i sigma + sigma * H_eps(r_i / sigma),  r_i = y_i - alpha - beta x_i
        H_eps(z) = z^2 if |z| <= eps else 2 eps |z| - eps^2

    which is jointly convex (Owen 2007). We alternate an iteratively reweighted least-squares step
    for the line (weights ``min(1, eps sigma / |r|)``) with the exact sigma step for fixed
    residuals, ``sigma^2 = sum_inliers r^2 / (n - eps^2 n_outliers)``, each of which lowers the
    objective, until both change by less than ``tol`` (relative). An exact fit returns sigma 0.
    """
    eps = check_positive(epsilon, "epsilon")
    if eps <= 1.0:
        raise InvalidInput(f"epsilon must be > 1.0 (as scikit-learn requires), got {eps!r}")
    ya, xa = as_pair(y, x, min_points=3)
    n = ya.shape[0]
    mx = float(np.mean(xa))
    xc = xa - mx  # centered regressor: well conditioned at any price level
    start = ols(ya, xa)
    beta, a0 = start.beta, float(np.mean(ya))  # a0 is the intercept at x = mean(x)
    r = ya - a0 - beta * xc
    sigma = float(np.sqrt(np.mean(r * r)))
    for _ in range(max_iter):
        if sigma == 0.0:
            break
        absr = np.abs(r)
        wts = np.minimum(1.0, eps * sigma / np.maximum(absr, np.finfo(float).tiny))
        sw = float(wts.sum())
        wx, wy = float(np.dot(wts, xc)) / sw, float(np.dot(wts, ya)) / sw
        dx, dy = xc - wx, ya - wy
        sxx = float(np.dot(wts * dx, dx))
        new_beta = float(np.dot(wts * dx, dy)) / sxx if sxx > 0.0 else beta
        new_a0 = wy - new_beta * wx
        r = ya - new_a0 - new_beta * xc
        absr = np.abs(r)
        inl = absr <= eps * sigma
        denom = n - eps * eps * float(n - inl.sum())
        # Too many outliers for the fixed point: the objective still falls as sigma grows.
        new_sigma = math.sqrt(float(np.dot(r[inl], r[inl])) / denom) if denom > 0.0 else 2.0 * sigma
        done = abs(new_beta - beta) <= tol * max(abs(new_beta), 1e-300) + 1e-300 and abs(
            new_sigma - sigma
        ) <= tol * sigma
        beta, a0, sigma = new_beta, new_a0, new_sigma
        if done:
            break
    else:
        # Typically 20-40 iterations suffice; report rather than return a half-converged fit.
        raise InvalidInput(f"huber did not converge in {max_iter} iterations (tol {tol:g}); raise max_iter")
    return RobustResult(beta=beta, alpha=a0 - beta * mx, scale=sigma, nobs=n, method="huber")


# Up to here all n x n differences at once is fastest; above, the two-pass bracket (bounded memory,
# and faster too: it selects the median from a small bracket instead of partitioning every slope).
_THEIL_SEN_DIRECT_N = 500
THEIL_SEN_MAX_N = 50_000  # 1.25e9 pairs: about a minute of work and ~60 MB kept in the bracket
_THEIL_SEN_CHUNK = 1 << 20  # beyond it, pair slopes are computed per block of ~1M (bounds memory)


def theil_sen(y: Any, x: Any) -> RobustResult:
    """Theil-Sen estimator: ``beta`` = median of the slopes over all pairs with distinct x,
    ``alpha = median(y - beta x)`` (``scipy.stats.theilslopes(..., method="joint")``).

    Exact, O(n^2) time, so at most ``THEIL_SEN_MAX_N`` points. Memory stays bounded: above 500 points,
    a first pass over a random sample of pairs brackets the median, a second exact pass counts the
    slopes below the bracket and keeps only those inside it, and the median is selected there
    (the bracket is widened and the pass repeated in the rare case it missed).
    """
    ya, xa = as_pair(y, x, min_points=2)
    n = xa.shape[0]
    if n > THEIL_SEN_MAX_N:
        raise InvalidInput(
            f"theil_sen is O(n^2) in pairs: {n} points exceeds the limit {THEIL_SEN_MAX_N}; "
            "subsample (e.g. one bar in k) or use huber"
        )
    if n <= _THEIL_SEN_DIRECT_N:
        beta = float(np.median(_block_slopes(ya, xa, 0, n), overwrite_input=True))
    else:
        beta = _median_slope_large(ya, xa, _count_distinct_x_pairs(xa))
    resid = ya - beta * xa
    alpha = float(np.median(resid))
    mad = float(np.median(np.abs(resid - alpha)))
    return RobustResult(beta=beta, alpha=alpha, scale=1.482602218505602 * mad, nobs=int(ya.shape[0]), method="theil_sen")


def _count_distinct_x_pairs(x: FloatArray) -> int:
    n = x.shape[0]
    _, counts = np.unique(x, return_counts=True)
    return n * (n - 1) // 2 - int(np.sum(counts * (counts - 1) // 2))


def _block_slopes(y: FloatArray, x: FloatArray, start: int, stop: int) -> FloatArray:
    """Slopes of the pairs (i, j) with i in [start, stop) and x_j > x_i.

    Over all rows every unordered pair with distinct x appears exactly once (in the row of its
    smaller x), with the value scipy computes for it.
    """
    dx = x[None, :] - x[start:stop, None]
    keep = dx > 0.0
    return (y[None, :] - y[start:stop, None])[keep] / dx[keep]


def _row_blocks(n: int) -> list[tuple[int, int]]:
    rows = max(1, _THEIL_SEN_CHUNK // n)
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def _median_slope_large(y: FloatArray, x: FloatArray, total: int) -> float:
    n = x.shape[0]
    rng = np.random.default_rng(0)  # fixed seed: the result is exact anyway, this only sets the work
    ks = [(total - 1) // 2, total // 2]  # 0-based order statistics averaged into the median
    # Sample size m: the bracket is ~ +-4/sqrt(m) in quantile, so ~8 total/sqrt(m) slopes are kept.
    m = min(2_000_000, max(20_000, total // 25))
    i = rng.integers(0, n, m)
    j = rng.integers(0, n, m)
    dx = x[j] - x[i]
    keep = dx != 0.0
    sample = np.sort((y[j] - y[i])[keep] / dx[keep])
    q = 0.5
    spread_q = 4.0 / math.sqrt(max(sample.shape[0], 1))
    blocks = _row_blocks(n)
    while True:
        lo_q, hi_q = max(0.0, q - spread_q), min(1.0, q + spread_q)
        lo = sample[int(lo_q * (sample.shape[0] - 1))] if lo_q > 0.0 else -np.inf
        hi = sample[int(hi_q * (sample.shape[0] - 1))] if hi_q < 1.0 else np.inf
        below, inside = 0, []
        for start, stop in blocks:
            s = _block_slopes(y, x, start, stop)
            below += int(np.count_nonzero(s < lo))
            inside.append(s[(s >= lo) & (s <= hi)])
        mid = np.concatenate(inside)
        if below <= ks[0] and below + mid.shape[0] > ks[1]:
            mid.sort()
            return float(0.5 * (mid[ks[0] - below] + mid[ks[1] - below]))
        spread_q *= 4.0


HedgeMethod = Literal["ols", "kalman", "huber", "theil_sen"]


@dataclass(frozen=True)
class HedgeResult:
    """The common answer of :func:`hedge`: method name, hedge ratio and intercept."""

    method: str
    beta: float
    alpha: float


def hedge(y: Any, x: Any, method: HedgeMethod = "ols", **params: Any) -> HedgeResult:
    """Hedge ratio of y on x by the named method; ``params`` go to that method's function
    (:func:`ols`, :func:`shared.analytics.kalman.kalman_hedge`, :func:`huber`, :func:`theil_sen`).
    For ``"kalman"`` the result is the last filtered (beta, alpha)."""
    check_choice(method, tuple(_METHODS), "hedge method")
    func = _METHODS[method]
    accepted = [p for p in inspect.signature(func).parameters if p not in ("y", "x")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidInput(
            f"unknown parameter(s) {', '.join(unknown)} for hedge method {method!r}; accepted: {', '.join(accepted)}"
        )
    if method == "kalman":
        kal = kalman_hedge(y, x, **params)
        return HedgeResult(method, float(kal.beta[-1]), float(kal.alpha[-1]))
    res = func(y, x, **params)
    return HedgeResult(method, res.beta, res.alpha)


_METHODS = {"ols": ols, "kalman": kalman_hedge, "huber": huber, "theil_sen": theil_sen}
