"""The pair signal as the live worker computes it, one observation at a time.

Definitions (one window, one hedge, one spread, so z-score and ADF describe the same series):

* hedge: y = alpha + beta * x fitted on the last ``window`` observations (OLS by default);
* spread_t = y_t - beta_t * x_t (the tradeable hedged position; alpha is reported apart);
* zscore_t = (spread_t - mean(spread over the window)) / std(spread over the window, ddof=1),
  the spread over the window being y_i - beta_t * x_i with today's beta. For OLS this equals the
  last residual over the residual std and is O(1) from the rolling co-moments;
* correlation: Pearson correlation of the legs' log returns over the window's ``window - 1``
  returns;
* every field is None until the window is full (``warm``).

``batch_pair_signal`` in ``shared.analytics.window_metrics`` computes the same numbers directly
from arrays; tests check the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.analytics.rolling import RollingMoments2
from shared.errors import InvalidInput

HEDGE_METHODS = ("ols",)


@dataclass(frozen=True, slots=True)
class PairSignal:
    warm: bool
    beta: float | None = None
    alpha: float | None = None
    r2: float | None = None
    spread: float | None = None
    zscore: float | None = None
    correlation: float | None = None


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


class PairSignalStream:
    """Streaming hedge / spread / z-score / correlation for one pair and timeframe."""

    def __init__(self, window: int, method: str = "ols") -> None:
        if method not in HEDGE_METHODS:
            raise InvalidInput(f"unknown hedge method {method!r}; choose one of {', '.join(HEDGE_METHODS)}")
        if not isinstance(window, int) or window < 3:
            raise InvalidInput(f"window must be an integer >= 3, got {window!r}")
        self.window = window
        self.method = method
        self._prices = RollingMoments2(window)
        self._returns = RollingMoments2(window - 1)
        self._last: tuple[float, float] | None = None

    @property
    def count(self) -> int:
        return self._prices.count

    @property
    def warm(self) -> bool:
        return self._prices.warm

    def reset(self) -> None:
        self._prices.reset()
        self._returns.reset()
        self._last = None

    def update(self, y: float, x: float) -> PairSignal:
        if not (y > 0.0 and x > 0.0 and math.isfinite(y) and math.isfinite(x)):
            raise InvalidInput(f"prices must be positive and finite, got y={y!r} x={x!r}")
        m = self._prices
        m.update(x, y)
        if self._last is not None:
            ly, lx = self._last
            self._returns.update(math.log(x / lx), math.log(y / ly))
        self._last = (y, x)
        if not m.warm:
            return PairSignal(warm=False)
        beta, alpha, r2 = m.ols()
        if not math.isfinite(beta):  # x constant over the window: no hedge exists
            return PairSignal(warm=True)
        ssr = max(m.cyy - beta * m.cxy, 0.0)
        sd = math.sqrt(ssr / (m.n - 1))
        resid = y - alpha - beta * x
        z = resid / sd if sd > 0.0 else math.nan
        return PairSignal(
            warm=True,
            beta=beta,
            alpha=alpha,
            r2=_finite_or_none(r2),
            spread=y - beta * x,
            zscore=_finite_or_none(z),
            correlation=_finite_or_none(self._returns.correlation()),
        )

    def window_points(self) -> list[tuple[float, float]]:
        """The (x, y) observations in the current window, oldest first."""
        return list(self._prices._buf)

    def get_state(self) -> dict:
        return {
            "window": self.window,
            "method": self.method,
            "prices": self._prices.get_state(),
            "returns": self._returns.get_state(),
            "last": list(self._last) if self._last else None,
        }

    @classmethod
    def from_state(cls, state: dict) -> PairSignalStream:
        obj = cls(state["window"], state["method"])
        obj._prices.set_state(state["prices"])
        obj._returns.set_state(state["returns"])
        obj._last = tuple(state["last"]) if state["last"] else None
        return obj
