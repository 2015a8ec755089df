"""Batch reference for ``PairSignalStream``: the same definitions computed from arrays.

O(n * window); used by tests and by the gateway for history re-computation, not on the hot path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def batch_pair_signal(y: np.ndarray, x: np.ndarray, window: int) -> pd.DataFrame:
    """Columns beta, alpha, r2, spread, zscore, correlation; NaN where the window is not full."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n = len(y)
    out = {k: np.full(n, np.nan) for k in ("beta", "alpha", "r2", "spread", "zscore", "correlation")}
    ry = np.diff(np.log(y))
    rx = np.diff(np.log(x))
    for t in range(window - 1, n):
        ys = y[t - window + 1 : t + 1]
        xs = x[t - window + 1 : t + 1]
        xc = xs - xs.mean()
        yc = ys - ys.mean()
        sxx = float(xc @ xc)
        if sxx <= 0.0:
            continue
        beta = float(xc @ yc) / sxx
        alpha = ys.mean() - beta * xs.mean()
        s = ys - beta * xs
        sd = s.std(ddof=1)
        out["beta"][t] = beta
        out["alpha"][t] = alpha
        syy = float(yc @ yc)
        out["r2"][t] = (float(xc @ yc) ** 2) / (sxx * syy) if syy > 0 else np.nan
        out["spread"][t] = s[-1]
        out["zscore"][t] = (s[-1] - s.mean()) / sd if sd > 0 else np.nan
        a = ry[t - window + 1 : t]
        b = rx[t - window + 1 : t]
        if a.std() > 0 and b.std() > 0:
            out["correlation"][t] = float(np.corrcoef(a, b)[0, 1])
    return pd.DataFrame(out)
