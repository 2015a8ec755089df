"""Kalman-filter hedge ratio: time-varying (beta, alpha) of ``y_t = beta_t x_t + alpha_t + e_t``.

Model (E. Chan, "Algorithmic Trading", ch. 3)::

    state      theta_t = (beta_t, alpha_t) = theta_{t-1} + w_t,   w_t ~ N(0, Vw),  Vw = delta / (1 - delta) I
    observe    y_t = H_t theta_t + e_t,   H_t = (x_t, 1),        e_t ~ N(0, Ve)

Each step: predict ``R = P + Vw``; one-step-ahead prediction error (the *spread*)
``e_t = y_t - H_t theta_{t-1}`` with variance ``Q_t = H_t R H_t' + Ve``; gain ``K = R H_t' / Q_t``;
update ``theta_t = theta_{t-1} + K e_t``, ``P = R - K H_t R``.

Initialisation (our choice; Chan starts from zero, which at BTC-scale prices takes thousands of
steps to forget): the first ``warmup`` observations are buffered and give no output (NaN). The
state then starts at the OLS fit on them, with covariance ``P0 = s^2 (X'X)^-1`` (the OLS
parameter covariance) and, unless ``obs_var`` is given, ``Ve = s^2``, the OLS residual variance
(ddof 2) of the warm-up: the observation noise is set on the data's own scale. If x is constant
over the warm-up buffer, warm-up continues with the most recent ``warmup`` points until it is not.

``delta`` is a variance in beta's units per step: Chan's 1e-4 suits prices near 100; at BTC-scale
x (~1e5) a beta step of sqrt(1e-4) moves the fitted y by ~1000, so values near 1e-10..1e-8 are
usual there.

The batch function runs the streaming class, so both give identical numbers, and the class state
is plain floats/ints (JSON-able) so a restored filter continues bit-for-bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from shared.analytics.validation import FloatArray, as_pair, check_min_points, check_positive
from shared.errors import InvalidInput

STATE_VERSION = 1


class KalmanStep(NamedTuple):
    """Output of one update: filtered beta/alpha, the one-step-ahead prediction error and its variance."""

    beta: float
    alpha: float
    spread: float
    spread_var: float


_NAN_STEP = KalmanStep(math.nan, math.nan, math.nan, math.nan)


def _check_delta(delta: Any) -> float:
    d = check_positive(delta, "delta")
    if d >= 1.0:
        raise InvalidInput(f"delta must be in (0, 1), got {d!r}")
    return d


def _check_warmup(warmup: Any) -> int:
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 3:
        raise InvalidInput(f"warmup must be an integer >= 3 (an OLS fit with a residual variance), got {warmup!r}")
    return warmup


def _warmup_fit(buf: list[tuple[float, float]]) -> tuple[float, float, float, float, float, float] | None:
    """OLS on the buffer: (beta, alpha, p11, p12, p22, s2), or None when x is constant.

    Two-pass with ``math.fsum``: exact to rounding at any price level and deterministic.
    """
    m = len(buf)
    mx = math.fsum(p[0] for p in buf) / m
    my = math.fsum(p[1] for p in buf) / m
    dx = [p[0] - mx for p in buf]
    dy = [p[1] - my for p in buf]
    sxx = math.fsum(a * a for a in dx)
    if not sxx > 0.0:
        return None
    beta = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / sxx
    alpha = my - beta * mx
    s2 = math.fsum((b - beta * a) ** 2 for a, b in zip(dx, dy, strict=True)) / (m - 2)
    # OLS covariance of (beta, alpha): s2 * (X'X)^-1 written with centered sums.
    p11 = s2 / sxx
    return beta, alpha, p11, -mx * p11, s2 / m + mx * mx * p11, s2


class KalmanHedge:
    """Streaming Kalman hedge ratio: ``update(x, y)`` returns a :class:`KalmanStep` (NaN during warm-up).

    ``warm`` is True once the filter has produced output; ``count`` counts accepted updates.
    """

    __slots__ = ("delta", "obs_var", "warmup", "_vw", "count", "_buf", "_ready", "beta", "alpha",
                 "_p11", "_p12", "_p22", "ve")

    def __init__(self, delta: float = 1e-4, obs_var: float | None = None, warmup: int = 50) -> None:
        self.delta = _check_delta(delta)
        self.obs_var = None if obs_var is None else check_positive(obs_var, "obs_var", allow_zero=True)
        self.warmup = _check_warmup(warmup)
        self._vw = self.delta / (1.0 - self.delta)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._buf: list[tuple[float, float]] = []
        self._ready = False
        self.beta = self.alpha = math.nan
        self._p11 = self._p12 = self._p22 = math.nan
        self.ve = math.nan

    @property
    def warm(self) -> bool:
        return self._ready

    @property
    def cov(self) -> tuple[float, float, float]:
        """Filtered state covariance (var beta, cov beta-alpha, var alpha)."""
        return self._p11, self._p12, self._p22

    def update(self, x: float, y: float) -> KalmanStep:
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInput(f"non-finite input x={x!r} y={y!r}")
        self.count += 1
        if not self._ready:
            self._buf.append((x, y))
            if len(self._buf) > self.warmup:
                del self._buf[0]
            if len(self._buf) == self.warmup:
                fit = _warmup_fit(self._buf)
                if fit is not None:
                    self.beta, self.alpha, self._p11, self._p12, self._p22, s2 = fit
                    self.ve = s2 if self.obs_var is None else self.obs_var
                    self._buf = []
                    self._ready = True
            return _NAN_STEP
        vw = self._vw
        r11, r12, r22 = self._p11 + vw, self._p12, self._p22 + vw
        e = y - (self.beta * x + self.alpha)
        rh1 = r11 * x + r12  # (R H')
        rh2 = r12 * x + r22
        q = x * rh1 + rh2 + self.ve
        k1, k2 = rh1 / q, rh2 / q
        self.beta += k1 * e
        self.alpha += k2 * e
        self._p11 = r11 - k1 * rh1
        self._p12 = r12 - k1 * rh2
        self._p22 = r22 - k2 * rh2
        return KalmanStep(self.beta, self.alpha, e, q)

    def get_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "delta": self.delta,
            "obs_var": self.obs_var,
            "warmup": self.warmup,
            "count": self.count,
            "ready": self._ready,
            "buf": [[a, b] for a, b in self._buf],
            # None (not NaN) before the filter starts: strict JSON, e.g. for a jsonb column.
            "theta": [self.beta, self.alpha] if self._ready else None,
            "P": [self._p11, self._p12, self._p22] if self._ready else None,
            "ve": self.ve if self._ready else None,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        try:
            if state["v"] != STATE_VERSION:
                raise InvalidInput(f"unsupported KalmanHedge state version {state['v']!r}")
            self.delta = _check_delta(state["delta"])
            ov = state["obs_var"]
            self.obs_var = None if ov is None else check_positive(ov, "obs_var", allow_zero=True)
            self.warmup = _check_warmup(state["warmup"])
            self._vw = self.delta / (1.0 - self.delta)
            self.count = int(state["count"])
            self._ready = bool(state["ready"])
            self._buf = [(float(a), float(b)) for a, b in state["buf"]]
            if self._ready:
                self.beta, self.alpha = (float(v) for v in state["theta"])
                self._p11, self._p12, self._p22 = (float(v) for v in state["P"])
                self.ve = float(state["ve"])
            else:
                self.beta = self.alpha = self._p11 = self._p12 = self._p22 = self.ve = math.nan
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"malformed KalmanHedge state: {exc!r}") from None


@dataclass(frozen=True, eq=False)
class KalmanResult:
    """Filtered paths (NaN during warm-up) and the one-step-ahead spread with its variance."""

    beta: FloatArray
    alpha: FloatArray
    spread: FloatArray
    spread_var: FloatArray
    obs_var: float
    delta: float
    warmup: int


def kalman_hedge(
    y: Any, x: Any, delta: float = 1e-4, obs_var: float | None = None, *, warmup: int = 50
) -> KalmanResult:
    """Kalman-filter hedge ratio over a whole series (see the module docstring for the model).

    Needs more than ``warmup`` points; outputs are NaN for the warm-up positions. ``obs_var`` in
    the result is the observation variance actually used (given, or estimated from the warm-up).
    """
    ya, xa = as_pair(y, x, min_points=3, x_not_constant=True)
    filt = KalmanHedge(delta=delta, obs_var=obs_var, warmup=warmup)
    check_min_points(ya.shape[0], filt.warmup + 1, f"kalman_hedge with warmup={filt.warmup}")
    out = np.empty((ya.shape[0], 4))
    update = filt.update
    for i, (xi, yi) in enumerate(zip(xa.tolist(), ya.tolist(), strict=True)):
        out[i] = update(xi, yi)
    if math.isnan(out[-1, 0]):
        # Reachable when x only starts to vary at the very end: the warm-up never completed in time.
        raise InvalidInput(
            f"no Kalman output: x stays constant until the last point of every {filt.warmup}-point warm-up window"
        )
    return KalmanResult(
        beta=out[:, 0].copy(),
        alpha=out[:, 1].copy(),
        spread=out[:, 2].copy(),
        spread_var=out[:, 3].copy(),
        obs_var=filt.ve,
        delta=filt.delta,
        warmup=filt.warmup,
    )
