"""One-shot analysis of a pair: every hedge method side by side plus the stationarity battery.

:func:`analyze_pair` is what ``pairs analyze`` prints and what the gateway's analysis endpoint
returns, so its output is plain JSON: dicts, lists, str, int, float, with non-finite floats
(an infinite half-life, a NaN correlation) written as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from shared.analytics.adf import adf
from shared.analytics.coint import engle_granger, johansen
from shared.analytics.hedge import huber, ols, theil_sen
from shared.analytics.kalman import kalman_hedge
from shared.analytics.leadlag import cross_correlation
from shared.analytics.meanrev import half_life, hurst
from shared.analytics.series import describe, log_returns, rolling_correlation, rolling_zscore, spread
from shared.analytics.validation import (
    as_pair,
    check_choice,
    check_min_points,
    check_not_constant,
    check_window,
)
from shared.errors import InvalidInput

METHODS = ("ols", "kalman", "huber", "theil_sen")
MIN_BARS = 60  # Kalman warm-up (50) plus enough bars left for an ADF on its spread
LEAD_LAG_MAX = 10


def _jsonable(value: Any) -> Any:
    """Plain-JSON copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


def _spread_summary(spread_path: np.ndarray, window: int) -> dict[str, Any]:
    """ADF p-value, half-life and latest z-score of one hedge method's spread (NaN warm-up dropped)."""
    s = spread_path[np.isfinite(spread_path)]
    out: dict[str, Any] = {"nobs": int(s.shape[0])}
    try:
        res = adf(s, regression="c", autolag="AIC")
        out.update(adf_stat=res.stat, adf_pvalue=res.pvalue, adf_used_lag=res.used_lag)
        out["half_life"] = half_life(s).half_life
    except InvalidInput as exc:  # e.g. a constant spread: report why instead of failing the pair
        out["error"] = str(exc)
    out["zscore"] = _last_finite(rolling_zscore(s, min(window, s.shape[0]))) if s.shape[0] >= 2 else math.nan
    return out


def _hedges(y: np.ndarray, x: np.ndarray, methods: Sequence[str], window: int) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for method in methods:
        if method == "kalman":
            kal = kalman_hedge(y, x)
            entry = {"beta": float(kal.beta[-1]), "alpha": float(kal.alpha[-1]), "spread": "one-step-ahead prediction error"}
            entry.update(_spread_summary(kal.spread, window))
        else:
            fit = {"ols": ols, "huber": huber, "theil_sen": theil_sen}[method](y, x)
            entry = {"beta": fit.beta, "alpha": fit.alpha, "spread": "y - alpha - beta * x"}
            entry.update(_spread_summary(spread(y, x, fit.beta, fit.alpha), window))
        table[method] = entry
    return table


def _time_range(y_prices: Any) -> dict[str, Any]:
    index = getattr(y_prices, "index", None)
    if isinstance(index, pd.DatetimeIndex) and len(index):
        return {"start": index[0].isoformat(), "end": index[-1].isoformat()}
    return {}


def analyze_pair(
    y_prices: Any,
    x_prices: Any,
    *,
    timeframe: str,
    window: int,
    methods: Sequence[str] = METHODS,
) -> dict[str, Any]:
    """Full analysis of y against x on aligned bar closes (same length, same timestamps).

    Everything is computed on the whole sample except the rolling z-score and rolling correlation,
    which use the trailing ``window`` bars (their latest values are reported).

    Returns a JSON-able dict with: ``hedge`` (per method: beta, alpha, and its spread's ADF
    p-value, half-life in bars and latest z-score; the Kalman spread is the filter's one-step-ahead
    prediction error after warm-up), ``adf`` (of the OLS spread and of each leg, constant, AIC lag),
    ``engle_granger`` (``y_on_x`` and ``x_on_y``), ``johansen`` (constant, one lagged difference),
    ``half_life`` and ``hurst`` of the OLS spread, ``correlation`` of log returns (whole sample and
    latest rolling), ``lead_lag`` of log returns (positive lag = y leads x), ``describe`` per leg and
    ``zscore`` (latest rolling z-score of the OLS spread).
    """
    ya, xa = as_pair(y_prices, x_prices, min_points=MIN_BARS)
    check_not_constant(ya, "y")  # x is checked by as_pair; a flat leg has no hedge to speak of
    w = check_window(window, ya.shape[0], minimum=3)
    chosen = tuple(dict.fromkeys((methods,) if isinstance(methods, str) else methods))
    if not chosen:
        raise InvalidInput(f"at least one hedge method is required; choose from {', '.join(METHODS)}")
    for method in chosen:
        check_choice(method, METHODS, "hedge method")
    check_min_points(ya.shape[0], MIN_BARS, "analyze_pair bars")

    ols_fit = ols(ya, xa)
    ols_spread = spread(ya, xa, ols_fit.beta, ols_fit.alpha)
    ry, rx = log_returns(ya), log_returns(xa)
    eg_yx, eg_xy = engle_granger(ya, xa), engle_granger(xa, ya)
    joh = johansen(np.column_stack([ya, xa]), det_order=0, k_ar_diff=1)
    hurst_res = hurst(ols_spread)
    report = {
        "timeframe": timeframe,
        "window": w,
        "nobs": int(ya.shape[0]),
        **_time_range(y_prices),
        "hedge": _hedges(ya, xa, chosen, w),
        "adf": {
            "spread_ols": adf(ols_spread).to_dict(),
            "y": adf(ya).to_dict(),
            "x": adf(xa).to_dict(),
        },
        "engle_granger": {"y_on_x": eg_yx.to_dict(), "x_on_y": eg_xy.to_dict()},
        "johansen": {
            k: v for k, v in joh.to_dict().items() if k not in ("vectors",)
        },
        "half_life": half_life(ols_spread).to_dict(),
        "hurst": {"h": hurst_res.h, "r2": hurst_res.r2, "min_lag": hurst_res.lags[0], "max_lag": hurst_res.lags[-1]},
        "correlation": {
            "returns": float(np.corrcoef(ry, rx)[0, 1]) if ry.std() > 0 and rx.std() > 0 else math.nan,
            "returns_rolling_latest": _last_finite(rolling_correlation(ry, rx, min(w, ry.shape[0]))),
        },
        "lead_lag": cross_correlation(ry, rx, min(LEAD_LAG_MAX, ry.shape[0] // 4)).to_dict(),
        "describe": {"y": asdict(describe(ya, timeframe)), "x": asdict(describe(xa, timeframe))},
        "zscore": {"window": w, "latest": _last_finite(rolling_zscore(ols_spread, w))},
    }
    return _jsonable(report)
