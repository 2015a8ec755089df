"""The pair signal as the live worker computes it, one observation at a time.

Definitions (one window, one hedge, one spread, so z-score and ADF describe the same series):

* hedge: y = alpha + beta * x fitted on the last ``window`` observations (OLS by default);
* spread_t = y_t - beta_t * x_t (the tradeable hedged position; alpha is reported apart);
* zscore_t = (spread_t - mean(spread over the window)) / std(spread over the window, ddof=1),
  the spread over the window being y_i - beta_t * x_i with today's beta. For OLS this equals the
  last residual over the residual std and is O(1) from the rolling co-moments;
* correlation: Pearson correlation of the legs' log returns over the window's ``window - 1``
  returns;
* every field is None until the window is full (``warm``);
* on request (``tests=True``, at bar closes) the window's spread is tested: ADF (constant, AIC lag
  choice) statistic and p-value, and the AR(1) half-life in observations.

Methods: ``ols`` (O(1) from rolling co-moments), ``huber`` and ``theil_sen`` (refitted on the
window at each update: O(window) and O(window^2)), and ``kalman``: beta and alpha from the
streaming Kalman filter (warm-up = the window), spread = y - beta_t * x_t, and zscore = the
one-step-ahead prediction error over its predicted standard deviation (Chan's entry signal);
its tests run on the last ``window`` Kalman spreads.

``batch_pair_signal`` in ``shared.analytics.window_metrics`` computes the same numbers directly
from arrays; tests check the two agree.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from shared.analytics import hedge as hedge_fits
from shared.analytics.adf import adf
from shared.analytics.kalman import KalmanHedge
from shared.analytics.meanrev import half_life
from shared.analytics.rolling import RollingMoments2
from shared.errors import InvalidInput

HEDGE_METHODS = ("ols", "kalman", "huber", "theil_sen")
DEFAULT_KALMAN_DELTA = 1e-9  # per-step state noise; small because beta is O(1) and prices are large


@dataclass(frozen=True, slots=True)
class PairSignal:
    warm: bool
    beta: float | None = None
    alpha: float | None = None
    r2: float | None = None
    spread: float | None = None
    zscore: float | None = None
    correlation: float | None = None
    adf_stat: float | None = None
    adf_p: float | None = None
    half_life: float | None = None


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def spread_tests(spread: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(ADF statistic, ADF p-value, half-life) of a window's spread; None where undefined."""
    try:
        res = adf(spread, regression="c", autolag="AIC")
        hl = half_life(spread).half_life
    except InvalidInput:  # constant or too short: no test exists
        return None, None, None
    # A spread that does not mean-revert has an infinite half-life: reported as None, like undefined.
    return _finite_or_none(float(res.stat)), _finite_or_none(float(res.pvalue)), _finite_or_none(float(hl))


class PairSignalStream:
    """Streaming hedge / spread / z-score / correlation for one pair and timeframe."""

    def __init__(self, window: int, method: str = "ols", kalman_delta: float = DEFAULT_KALMAN_DELTA) -> None:
        if method not in HEDGE_METHODS:
            raise InvalidInput(f"unknown hedge method {method!r}; choose one of {', '.join(HEDGE_METHODS)}")
        if not isinstance(window, int) or window < 3:
            raise InvalidInput(f"window must be an integer >= 3, got {window!r}")
        self.window = window
        self.method = method
        self.kalman_delta = kalman_delta
        self._prices = RollingMoments2(window)
        self._returns = RollingMoments2(window - 1)
        self._last: tuple[float, float] | None = None
        self._kalman = KalmanHedge(delta=kalman_delta, warmup=window) if method == "kalman" else None
        self._kalman_spreads: deque[float] = deque(maxlen=window)

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
        if self._kalman is not None:
            self._kalman.reset()
        self._kalman_spreads.clear()

    def update(self, y: float, x: float, tests: bool = False) -> PairSignal:
        y, x = float(y), float(x)  # plain floats only: the state is JSON and the records are msgspec
        if not (y > 0.0 and x > 0.0 and math.isfinite(y) and math.isfinite(x)):
            raise InvalidInput(f"prices must be positive and finite, got y={y!r} x={x!r}")
        m = self._prices
        m.update(x, y)
        if self._last is not None:
            ly, lx = self._last
            self._returns.update(math.log(x / lx), math.log(y / ly))
        self._last = (y, x)
        if self._kalman is not None:
            return self._update_kalman(y, x, tests)
        if not m.warm:
            return PairSignal(warm=False)
        if self.method == "ols":
            beta, alpha, r2 = m.ols()
            if not math.isfinite(beta):  # x constant over the window: no hedge exists
                return PairSignal(warm=True)
            ssr = max(m.cyy - beta * m.cxy, 0.0)
            sd = math.sqrt(ssr / (m.n - 1))
            z = (y - alpha - beta * x) / sd if sd > 0.0 else math.nan
            window_spread = None
        else:
            xs, ys = self._window_arrays()
            try:
                fit = hedge_fits.huber(ys, xs) if self.method == "huber" else hedge_fits.theil_sen(ys, xs)
            except InvalidInput:  # constant x, or the robust fit did not converge on this window
                return PairSignal(warm=True)
            beta, alpha = float(fit.beta), float(fit.alpha)
            window_spread = ys - beta * xs
            resid = ys - alpha - beta * xs
            sst = float(((ys - ys.mean()) ** 2).sum())
            r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else math.nan
            sd = float(window_spread.std(ddof=1))
            z = float((window_spread[-1] - window_spread.mean()) / sd) if sd > 0 else math.nan
        adf_stat = adf_p = hl = None
        if tests:
            if window_spread is None:
                xs, ys = self._window_arrays()
                window_spread = ys - beta * xs
            adf_stat, adf_p, hl = spread_tests(window_spread)
        return PairSignal(
            warm=True,
            beta=beta,
            alpha=alpha,
            r2=_finite_or_none(r2),
            spread=y - beta * x,
            zscore=_finite_or_none(z),
            correlation=_finite_or_none(self._returns.correlation()),
            adf_stat=adf_stat,
            adf_p=adf_p,
            half_life=hl,
        )

    def _window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        pts = np.array(self._prices._buf)
        return pts[:, 0], pts[:, 1]

    def _update_kalman(self, y: float, x: float, tests: bool) -> PairSignal:
        step = self._kalman.update(x, y)
        if not self._kalman.warm or not math.isfinite(step.beta):
            return PairSignal(warm=False)
        spread = y - step.beta * x
        self._kalman_spreads.append(spread)
        z = step.spread / math.sqrt(step.spread_var) if step.spread_var > 0 else math.nan
        adf_stat = adf_p = hl = None
        if tests and len(self._kalman_spreads) == self.window:
            adf_stat, adf_p, hl = spread_tests(np.array(self._kalman_spreads))
        return PairSignal(
            warm=True,
            beta=step.beta,
            alpha=step.alpha,
            spread=spread,
            zscore=_finite_or_none(z),
            correlation=_finite_or_none(self._returns.correlation()) if self._returns.warm else None,
            adf_stat=adf_stat,
            adf_p=adf_p,
            half_life=hl,
        )

    def window_points(self) -> list[tuple[float, float]]:
        """The (x, y) observations in the current window, oldest first."""
        return list(self._prices._buf)

    def get_state(self) -> dict:
        return {
            "window": self.window,
            "method": self.method,
            "kalman_delta": self.kalman_delta,
            "prices": self._prices.get_state(),
            "returns": self._returns.get_state(),
            "last": list(self._last) if self._last else None,
            "kalman": self._kalman.get_state() if self._kalman is not None else None,
            "kalman_spreads": list(self._kalman_spreads),
        }

    @classmethod
    def from_state(cls, state: dict) -> PairSignalStream:
        obj = cls(state["window"], state["method"], state["kalman_delta"])
        obj._prices.set_state(state["prices"])
        obj._returns.set_state(state["returns"])
        obj._last = tuple(state["last"]) if state["last"] else None
        if obj._kalman is not None:
            obj._kalman.set_state(state["kalman"])
        obj._kalman_spreads.extend(state["kalman_spreads"])
        return obj
