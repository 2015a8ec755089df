"""Lead-lag between two return series: Pearson correlation at a range of lags."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.analytics.validation import as_float_array, check_min_points, check_same_length
from shared.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class LeadLagResult:
    """Correlations ``corr(a_t, b_{t+k})`` for ``k`` in ``lags``.

    Sign convention: a **positive** ``best_lag = k`` means **a leads b** by ``k`` observations
    (a's move shows up in b ``k`` bars later); negative means b leads a; 0 means simultaneous.
    ``best_lag`` maximises ``|corr|`` (ties: the smallest ``|k|``, then the negative one); a lag
    whose overlap has zero variance has a NaN correlation and is never chosen.
    """

    lags: tuple[int, ...]
    correlations: tuple[float, ...]
    best_lag: int
    best_corr: float
    nobs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "lags": list(self.lags),
            "correlations": list(self.correlations),
            "best_lag": self.best_lag,
            "best_corr": self.best_corr,
            "nobs": self.nobs,
        }


def _pearson(u: np.ndarray, v: np.ndarray) -> float:
    uc = u - u.mean()
    vc = v - v.mean()
    denom = math.sqrt(float(uc @ uc) * float(vc @ vc))
    return float(uc @ vc) / denom if denom > 0 else math.nan


def cross_correlation(a: Any, b: Any, max_lag: int) -> LeadLagResult:
    """Cross-correlation of two aligned **return** series at lags ``-max_lag..max_lag``.

    Pass returns (e.g. log returns of bar closes), not prices: correlations of trending price
    levels are spurious at every lag. Each lag uses only the overlapping observations, with its
    own means (the same as ``pandas.Series.corr(b.shift(-k))``).

    Parameters
    ----------
    a, b : array_like, 1-D, equal lengths
    max_lag : int >= 0, less than ``len(a) - 2`` so every lag keeps 3 pairs
    """
    aa = as_float_array(a, "a")
    bb = as_float_array(b, "b")
    check_same_length(aa, bb, ("a", "b"))
    n = aa.shape[0]
    if isinstance(max_lag, bool) or not isinstance(max_lag, int | np.integer) or max_lag < 0:
        raise InvalidInput(f"max_lag must be a non-negative integer, got {max_lag!r}")
    check_min_points(n, int(max_lag) + 3, f"cross-correlation with max_lag={max_lag}")
    lags = tuple(range(-int(max_lag), int(max_lag) + 1))
    corrs = []
    for k in lags:
        if k >= 0:
            corrs.append(_pearson(aa[: n - k], bb[k:]))
        else:
            corrs.append(_pearson(aa[-k:], bb[: n + k]))
    arr = np.array(corrs)
    if np.all(np.isnan(arr)):
        raise InvalidInput("a or b is constant at every lag; correlations are undefined")
    # Rank by |corr| desc, then |lag| asc, then lag asc, so the choice is deterministic.
    best = min(
        (i for i in range(len(lags)) if not math.isnan(corrs[i])),
        key=lambda i: (-abs(corrs[i]), abs(lags[i]), lags[i]),
    )
    return LeadLagResult(lags=lags, correlations=tuple(corrs), best_lag=lags[best], best_corr=corrs[best], nobs=n)
