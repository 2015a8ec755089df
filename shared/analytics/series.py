"""Series helpers: spread, rolling z-score / correlation, log returns, price summary, correlation matrix.

Rolling statistics here are computed window by window with a two-pass (mean first, then centered
sums) formula on a sliding view of the data, so they are exact to rounding whatever the price
level: nothing is obtained as a difference of large raw sums. Cost is O(n * window) flops,
vectorised in chunks of bounded memory. The streaming classes in :mod:`shared.analytics.rolling`
give the same numbers one update at a time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from shared.analytics.validation import (
    FloatArray,
    as_float_array,
    check_choice,
    check_min_points,
    check_positive,
    check_same_length,
    check_window,
)
from shared.errors import InvalidInput
from shared.timeframes import US_PER_SECOND, timeframe_us

SECONDS_PER_YEAR = 365.0 * 86400.0  # crypto trades every day of the year
_CHUNK_ELEMENTS = 1 << 18  # elements of one (rows x window) block: bounds temporary memory


@dataclass(frozen=True, eq=False)
class RollingComoments:
    """Per-window statistics aligned to the window's last index (NaN / 0 before the first full window).

    ``count`` is the number of observations used (the window, or fewer under a mask);
    ``sxx``/``syy``/``sxy`` are centered sums: sum((x - mean_x) * (y - mean_y)) etc.
    """

    count: FloatArray
    mean_x: FloatArray
    mean_y: FloatArray
    sxx: FloatArray
    syy: FloatArray
    sxy: FloatArray


def rolling_comoments(
    x: FloatArray, y: FloatArray, window: int, mask: np.ndarray | None = None
) -> RollingComoments:
    """Two-pass centered co-moments of (x, y) over each trailing window of ``window`` positions.

    Inputs must already be validated float64 arrays of equal length (NaN propagates). ``mask``
    (bool, same length) keeps only the marked observations of each window; a window with no kept
    observation has count 0 and NaN means.
    """
    n = x.shape[0]
    out = {k: np.full(n, np.nan) for k in ("mean_x", "mean_y", "sxx", "syy", "sxy")}
    count = np.zeros(n)
    if n >= window:
        xv, yv = sliding_window_view(x, window), sliding_window_view(y, window)
        mv = sliding_window_view(mask, window) if mask is not None else None
        rows = max(1, _CHUNK_ELEMENTS // window)
        for start in range(0, xv.shape[0], rows):
            stop = min(start + rows, xv.shape[0])
            bx, by = xv[start:stop], yv[start:stop]
            at = slice(start + window - 1, stop + window - 1)
            if mv is None:
                cnt = np.full(stop - start, float(window))
                mx, my = bx.mean(axis=1), by.mean(axis=1)
                dx, dy = bx - mx[:, None], by - my[:, None]
            else:
                bm = mv[start:stop]
                cnt = bm.sum(axis=1).astype(np.float64)
                with np.errstate(invalid="ignore", divide="ignore"):
                    mx = np.where(bm, bx, 0.0).sum(axis=1) / cnt
                    my = np.where(bm, by, 0.0).sum(axis=1) / cnt
                dx = np.where(bm, bx - mx[:, None], 0.0)
                dy = np.where(bm, by - my[:, None], 0.0)
            count[at] = cnt
            out["mean_x"][at], out["mean_y"][at] = mx, my
            out["sxx"][at] = np.einsum("ij,ij->i", dx, dx)
            out["syy"][at] = np.einsum("ij,ij->i", dy, dy)
            out["sxy"][at] = np.einsum("ij,ij->i", dx, dy)
    return RollingComoments(count=count, **out)


def spread(y: Any, x: Any, beta: Any, alpha: Any = 0.0) -> FloatArray:
    """Spread ``y - alpha - beta * x``.

    ``beta`` and ``alpha`` are scalars or arrays of the same length as ``y`` (e.g. a rolling or
    Kalman hedge path). NaN in a hedge path (a warm-up position) gives NaN at that position;
    prices themselves must be finite.
    """
    ya, xa = as_float_array(y, "y"), as_float_array(x, "x")
    check_same_length(ya, xa)
    b = _scalar_or_path(beta, "beta", ya.shape[0])
    a = _scalar_or_path(alpha, "alpha", ya.shape[0])
    return ya - a - b * xa


def _scalar_or_path(value: Any, name: str, n: int) -> FloatArray | float:
    if np.ndim(value) == 0:
        v = float(value)
        if math.isinf(v):
            raise InvalidInput(f"{name} must be finite, got {v!r}")
        return v
    arr = as_float_array(value, name, allow_nan=True)
    if arr.shape[0] != n:
        raise InvalidInput(f"{name} must have the length of the prices, got {arr.shape[0]} and {n}")
    return arr


def rolling_zscore(s: Any, window: int) -> FloatArray:
    """Rolling z-score, the batch twin of :class:`shared.analytics.rolling.RollingZScore`.

    ``z_t = (s_t - mean(s[t-W+1..t])) / std(s[t-W+1..t], ddof=1)`` (the window includes s_t).
    NaN for the first ``W - 1`` positions, where the window's std is 0 (constant window), and for
    any window containing NaN (so a spread built on a warming-up hedge path can be passed as is).
    """
    arr = as_float_array(s, "s", allow_nan=True)
    w = check_window(window, arr.shape[0])
    m = rolling_comoments(arr, arr, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(m.sxx / (w - 1))
        z = (arr - m.mean_x) / sd
    return np.where(sd > 0.0, z, np.nan)


def rolling_correlation(a: Any, b: Any, window: int) -> FloatArray:
    """Rolling Pearson correlation over trailing windows; NaN before the first full window and
    where either leg is constant over the window. Clipped to [-1, 1] against rounding."""
    aa, ba = as_float_array(a, "a"), as_float_array(b, "b")
    check_same_length(aa, ba, ("a", "b"))
    w = check_window(window, aa.shape[0])
    m = rolling_comoments(aa, ba, w)
    ok = (m.sxx > 0.0) & (m.syy > 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = m.sxy / np.sqrt(m.sxx * m.syy)
    return np.where(ok, np.clip(r, -1.0, 1.0), np.nan)


def log_returns(prices: Any) -> FloatArray:
    """``log(p_t / p_{t-1})`` (length n - 1), computed as log1p of the simple return for accuracy
    on small moves. Prices must be finite and > 0."""
    p = as_float_array(prices, "prices")
    check_min_points(p.shape[0], 2, "prices")
    if (p <= 0.0).any():
        pos = int(np.flatnonzero(p <= 0.0)[0])
        raise InvalidInput(f"prices must be > 0 for log returns, got {float(p[pos])!r} at position {pos}")
    return np.log1p(np.diff(p) / p[:-1])


@dataclass(frozen=True)
class PriceStats:
    """Summary of one price series (see :func:`describe` for the definitions)."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    last: float
    total_return: float
    annualized_return: float
    annualized_volatility: float
    skew: float
    kurtosis: float
    bar_seconds: float


def _bar_seconds(bar_interval: str | float) -> float:
    if isinstance(bar_interval, str):
        us = timeframe_us(bar_interval)
        if us == 0:
            raise InvalidInput("bar_interval 'tick' has no fixed length; give seconds per observation")
        return us / US_PER_SECOND
    return check_positive(bar_interval, "bar_interval")


def describe(prices: Any, bar_interval: str | float = "1m") -> PriceStats:
    """Summary statistics of a price series sampled every ``bar_interval`` (a timeframe such as
    ``"1m"`` or seconds).

    Notes
    -----
    - ``mean``/``std`` (ddof=1)/``min``/``max``/``last`` are of the prices.
    - ``total_return = p_last / p_first - 1``.
    - With r the log returns and P = 365 * 86400 / bar_seconds periods per year (24/7 market):
      ``annualized_return = exp(mean(r) * P) - 1`` (compounded; may be very large or ``inf`` for a
      short, trending sample) and ``annualized_volatility = std(r, ddof=1) * sqrt(P)``.
    - ``skew`` and ``kurtosis`` (excess) are of the log returns, bias-corrected as pandas'
      ``Series.skew`` / ``Series.kurt``; NaN with fewer than 3 / 4 returns or zero variance.
    """
    p = as_float_array(prices, "prices")
    check_min_points(p.shape[0], 2, "prices")
    secs = _bar_seconds(bar_interval)
    r = log_returns(p)
    periods = SECONDS_PER_YEAR / secs
    vol = float(np.std(r, ddof=1)) * math.sqrt(periods) if r.shape[0] >= 2 else math.nan
    with np.errstate(over="ignore"):
        ann = float(np.expm1(np.mean(r) * periods))
    return PriceStats(
        count=int(p.shape[0]),
        mean=float(np.mean(p)),
        std=float(np.std(p, ddof=1)),
        min=float(np.min(p)),
        max=float(np.max(p)),
        last=float(p[-1]),
        total_return=float(p[-1] / p[0] - 1.0),
        annualized_return=ann,
        annualized_volatility=vol,
        skew=_sample_skew(r),
        kurtosis=_sample_excess_kurtosis(r),
        bar_seconds=secs,
    )


def _central_moments(r: FloatArray) -> tuple[int, float, float, float]:
    d = r - r.mean()
    return r.shape[0], float(np.mean(d * d)), float(np.mean(d**3)), float(np.mean(d**4))


def _sample_skew(r: FloatArray) -> float:
    """Adjusted Fisher-Pearson skewness G1 = g1 * sqrt(n(n-1)) / (n-2)."""
    n, m2, m3, _ = _central_moments(r)
    if n < 3 or not m2 > 0.0:
        return math.nan
    return m3 / m2**1.5 * math.sqrt(n * (n - 1)) / (n - 2)


def _sample_excess_kurtosis(r: FloatArray) -> float:
    """Bias-corrected excess kurtosis G2 = ((n+1) g2 + 6) (n-1) / ((n-2)(n-3)), g2 = m4/m2^2 - 3."""
    n, m2, _, m4 = _central_moments(r)
    if n < 4 or not m2 > 0.0:
        return math.nan
    g2 = m4 / (m2 * m2) - 3.0
    return ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3))


CorrelationMethod = Literal["pearson", "spearman", "kendall"]


def correlation_matrix(
    frame_or_dict: pd.DataFrame | Mapping[str, Any],
    method: CorrelationMethod = "pearson",
    on: Literal["returns", "prices"] = "returns",
) -> pd.DataFrame:
    """Correlation matrix of several aligned price series (columns / keys are the names).

    ``on="returns"`` correlates log returns (the usual choice: price levels of trending assets
    correlate spuriously); ``on="prices"`` correlates the levels. Series must be finite, of equal
    length, with at least 3 observations after differencing. A constant series gives a NaN row
    and column (its correlation is undefined), 1.0 stays on the diagonal of the others.
    """
    check_choice(method, ("pearson", "spearman", "kendall"), "method")
    check_choice(on, ("returns", "prices"), "on")
    items = list(frame_or_dict.items())
    if not items:
        raise InvalidInput("correlation_matrix needs at least one series")
    cols: dict[str, FloatArray] = {}
    first_name, first = None, None
    for name, values in items:
        arr = as_float_array(values, f"series {name!r}")
        if first is None:
            first_name, first = name, arr
        else:
            check_same_length(first, arr, (f"series {first_name!r}", f"series {name!r}"))
        cols[str(name)] = log_returns(arr) if on == "returns" else arr
    check_min_points(next(iter(cols.values())).shape[0], 3, f"{on} of each series")
    frame = pd.DataFrame(cols)
    constant = [c for c in frame.columns if frame[c].nunique() < 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = frame.corr(method=method)
    result.loc[constant, :] = np.nan
    result.loc[:, constant] = np.nan
    return result
