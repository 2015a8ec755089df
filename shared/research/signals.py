"""Streaming pair signals for research: the live worker's hedge and z-score plus an entry/exit state machine.

``SignalEngine`` consumes one bar close of each leg at a time, so anything it decides at bar ``t``
can only depend on closes up to and including ``t`` (no look-ahead by construction).

Hedge and z-score (``method``):

* every method of the live worker (``"ols"``, ``"kalman"``, ``"huber"``, ``"theil_sen"``) runs
  exactly the live code, ``shared.analytics.pair_stream.PairSignalStream(window, method,
  kalman_delta)``, so backtest and live share one definition. For ``"ols"``: rolling OLS of y on x
  over ``window`` bars, spread = y - beta * x, z = the z-score of the window's spread with today's
  beta. For ``"kalman"``: the streaming Kalman hedge (warm-up = window), spread y - beta_t * x_t,
  z = the one-step prediction error over its predicted standard deviation. Huber / Theil-Sen refit
  the window at every bar (slow: O(window) / O(window^2) per bar);
* ``"fixed"`` (research only): a constant hedge ratio ``fixed_beta`` (e.g. from a prior fit),
  spread y - beta * x, z from ``RollingZScore(window)`` over it.

Position state machine (``target``: +1 long spread = long y / short x, -1 short spread, 0 flat):

* flat -> +1 when z <= -entry and z > -stop; flat -> -1 when z >= entry and z < stop;
* +1 -> 0 on z >= -exit ("exit"), z <= -stop ("stop") or after ``max_hold_bars`` bars ("time");
  -1 symmetric;
* after a stop or a time exit no new position is opened until |z| < entry again, so a spread
  that keeps diverging is not re-entered on the next bar;
* a NaN z (constant window) changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from shared.analytics import pair_stream
from shared.analytics.pair_stream import PairSignalStream
from shared.analytics.rolling import RollingZScore
from shared.errors import InvalidInput

HedgeMethod = Literal["ols", "kalman", "huber", "theil_sen", "fixed"]
LIVE_METHODS: tuple[str, ...] = tuple(pair_stream.HEDGE_METHODS)
HEDGE_METHODS: tuple[str, ...] = (*LIVE_METHODS, "fixed")

# The live worker's Kalman state noise per bar (see shared.analytics.pair_stream).
DEFAULT_KALMAN_DELTA = pair_stream.DEFAULT_KALMAN_DELTA

REASON_ENTRY = "entry"
REASON_EXIT = "exit"
REASON_STOP = "stop"
REASON_TIME = "time"


@dataclass(frozen=True, slots=True)
class SignalParams:
    """Strategy parameters. Thresholds are in z units; ``stop=math.inf`` disables the stop."""

    window: int = 300
    entry: float = 2.0
    exit: float = 0.5
    stop: float = 4.0
    max_hold_bars: int | None = None
    method: HedgeMethod = "ols"
    fixed_beta: float | None = None
    kalman_delta: float = DEFAULT_KALMAN_DELTA

    def __post_init__(self) -> None:
        if self.method not in HEDGE_METHODS:
            raise InvalidInput(f"unknown hedge method {self.method!r}; choose one of {', '.join(HEDGE_METHODS)}")
        if not isinstance(self.window, int) or self.window < 3:
            raise InvalidInput(f"window must be an integer >= 3, got {self.window!r}")
        if not (0.0 <= self.exit < self.entry < self.stop):
            raise InvalidInput(
                f"thresholds must satisfy 0 <= exit < entry < stop, got exit={self.exit} "
                f"entry={self.entry} stop={self.stop}"
            )
        if self.max_hold_bars is not None and (not isinstance(self.max_hold_bars, int) or self.max_hold_bars < 1):
            raise InvalidInput(f"max_hold_bars must be a positive integer or None, got {self.max_hold_bars!r}")
        if self.method == "fixed":
            if self.fixed_beta is None or not math.isfinite(self.fixed_beta):
                raise InvalidInput("method 'fixed' needs a finite fixed_beta")
        elif self.fixed_beta is not None:
            raise InvalidInput(f"fixed_beta is only used with method 'fixed', not {self.method!r}")
        if not (math.isfinite(self.kalman_delta) and 0.0 < self.kalman_delta < 1.0):
            raise InvalidInput(f"kalman_delta must be in (0, 1), got {self.kalman_delta!r}")


@dataclass(frozen=True, slots=True)
class BarSignal:
    """What the engine knows after one bar close. ``reason`` names a change of ``target``, else ''."""

    warm: bool
    beta: float
    spread: float
    z: float
    target: int
    reason: str


class _LiveSource:
    """The live worker's hedge, spread and z-score (``PairSignalStream``)."""

    def __init__(self, window: int, method: str, kalman_delta: float) -> None:
        self._stream = PairSignalStream(window, method, kalman_delta)

    def update(self, y: float, x: float) -> tuple[bool, float, float, float]:
        s = self._stream.update(y, x)
        if not s.warm or s.beta is None:
            return False, math.nan, math.nan, math.nan
        z = s.zscore if s.zscore is not None else math.nan
        return True, s.beta, s.spread if s.spread is not None else math.nan, z


class _SpreadZSource:
    """A hedge ratio source plus ``RollingZScore`` over y - beta * x (fed only once the hedge is warm)."""

    def __init__(self, window: int, hedge: _FixedHedge) -> None:
        self._hedge = hedge
        self._z = RollingZScore(window)

    def update(self, y: float, x: float) -> tuple[bool, float, float, float]:
        beta = self._hedge.update(y, x)
        if not math.isfinite(beta):
            return False, math.nan, math.nan, math.nan
        spread = y - beta * x
        z = self._z.update(spread)
        if not self._z.warm:
            return False, beta, spread, math.nan
        return True, beta, spread, z


class _FixedHedge:
    def __init__(self, beta: float) -> None:
        self._beta = beta

    def update(self, y: float, x: float) -> float:
        return self._beta


def _make_source(params: SignalParams) -> _LiveSource | _SpreadZSource:
    if params.method == "fixed":
        assert params.fixed_beta is not None  # checked in SignalParams
        return _SpreadZSource(params.window, _FixedHedge(params.fixed_beta))
    return _LiveSource(params.window, params.method, params.kalman_delta)


class SignalEngine:
    """Bar-by-bar hedge, z-score and target position; see the module docstring for the rules."""

    def __init__(self, params: SignalParams) -> None:
        self.params = params
        self._source = _make_source(params)
        self.target = 0
        self.bars_held = 0
        self._blocked = False
        self.count = 0

    def update(self, y_close: float, x_close: float) -> BarSignal:
        if not (y_close > 0.0 and x_close > 0.0 and math.isfinite(y_close) and math.isfinite(x_close)):
            raise InvalidInput(f"prices must be positive and finite, got y={y_close!r} x={x_close!r}")
        self.count += 1
        warm, beta, spread, z = self._source.update(y_close, x_close)
        reason = self._decide(z) if warm and math.isfinite(z) else ""
        if self.target != 0 and reason != REASON_ENTRY:
            self.bars_held += 1
            if not reason:
                reason = self._time_exit()
        return BarSignal(warm=warm, beta=beta, spread=spread, z=z, target=self.target, reason=reason)

    def _decide(self, z: float) -> str:
        p = self.params
        if self.target == 0:
            if self._blocked:
                if abs(z) < p.entry:
                    self._blocked = False
                return ""
            if p.entry <= z < p.stop:
                return self._open(-1)
            if -p.stop < z <= -p.entry:
                return self._open(+1)
            return ""
        side = self.target
        if side * z <= -p.stop:  # diverged further: long spread with z <= -stop, short with z >= stop
            return self._close(REASON_STOP)
        if side * z >= -p.exit:  # reverted to within the exit band (or beyond)
            return self._close(REASON_EXIT)
        return ""

    def _time_exit(self) -> str:
        limit = self.params.max_hold_bars
        if limit is not None and self.bars_held >= limit:
            return self._close(REASON_TIME)
        return ""

    def _open(self, side: int) -> str:
        self.target = side
        self.bars_held = 0
        return REASON_ENTRY

    def _close(self, reason: str) -> str:
        self.target = 0
        self.bars_held = 0
        self._blocked = reason in (REASON_STOP, REASON_TIME)
        return reason
