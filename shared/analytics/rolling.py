"""Streaming rolling-window statistics: O(1) per update, stable at BTC-scale prices.

Shape (nautilus-indicator style): ``update(...)``, ``count``, ``warm`` (window full) and
``reset()``; plus ``get_state()`` / ``set_state()`` so a worker can checkpoint the exact state in
its database transaction and resume bit-for-bit after a crash.

Numerics: co-moments are kept Welford-style (means plus centered sums), so nothing is ever
computed as a difference of two huge raw sums (``sum(x*x) - n*mean**2`` loses ~10 of 16 digits at
x ~ 1e5). Every ``window`` updates the state is recomputed exactly from the window buffer
(two-pass, ``math.fsum``), which bounds any drift however many updates run. The resync point
depends only on the update count stored in the state, so a restored state follows the same path.
"""

from __future__ import annotations

import math
from collections import deque
from operator import mul

from shared.errors import InvalidInput


def _check_window(window: int) -> int:
    if not isinstance(window, int) or window < 2:
        raise InvalidInput(f"window must be an integer >= 2, got {window!r}")
    return window


_isfinite = math.isfinite
_fsum = math.fsum


def _non_finite(*values: float) -> InvalidInput:
    bad = next((v for v in values if not _isfinite(v)), values[0])
    return InvalidInput(f"non-finite input {bad!r}")


class RollingMoments2:
    """Means and centered co-moments of (x, y) over the last ``window`` observations."""

    __slots__ = ("window", "_buf", "n", "mx", "my", "cxx", "cyy", "cxy", "count", "_since_resync")

    def __init__(self, window: int) -> None:
        self.window = _check_window(window)
        self.reset()

    def reset(self) -> None:
        self._buf: deque[tuple[float, float]] = deque()
        self.n = 0
        self.mx = self.my = 0.0
        self.cxx = self.cyy = self.cxy = 0.0
        self.count = 0  # updates since reset (not capped by the window)
        self._since_resync = 0

    @property
    def warm(self) -> bool:
        return self.n == self.window

    def update(self, x: float, y: float) -> None:
        # Hot path (a few µs budget): state is read into locals once and written back once.
        # While filling: the Welford add step. Once full: one "slide" step that replaces the oldest
        # pair by the new one with the window size fixed (all terms centered, no raw sums):
        #   mx' = mx + (x - ox)/n
        #   cxx' = cxx + (x - ox) * (x - mx' + ox - mx)
        #   cxy' = cxy + (x - mx)(y - my) - (ox - mx)(oy - my) - (x - ox)(y - oy)/n
        if not (_isfinite(x) and _isfinite(y)):
            raise _non_finite(x, y)
        buf = self._buf
        buf.append((x, y))
        self.count += 1
        n = self.n
        mx = self.mx
        my = self.my
        if n == self.window:
            ox, oy = buf.popleft()
            dx = x - ox
            dy = y - oy
            mx2 = mx + dx / n
            my2 = my + dy / n
            self.cxx += dx * (x - mx2 + ox - mx)
            self.cyy += dy * (y - my2 + oy - my)
            self.cxy += (x - mx) * (y - my) - (ox - mx) * (oy - my) - dx * dy / n
        else:
            n += 1
            dx = x - mx
            mx2 = mx + dx / n
            my2 = my + (y - my) / n
            self.cxx += dx * (x - mx2)
            self.cxy += dx * (y - my2)
            self.cyy += (y - my) * (y - my2)
            self.n = n
        self.mx = mx2
        self.my = my2
        since = self._since_resync + 1
        self._since_resync = since
        if since >= self.window:
            self._resync()

    def _resync(self) -> None:
        """Exact two-pass recomputation from the buffer (bounds accumulated rounding)."""
        n = len(self._buf)
        xs, ys = zip(*self._buf, strict=True)
        mx = _fsum(xs) / n
        my = _fsum(ys) / n
        dxs = [x - mx for x in xs]
        dys = [y - my for y in ys]
        self.mx, self.my = mx, my
        # map(mul, ...) forms the same products as a generator expression, only faster.
        self.cxx = _fsum(map(mul, dxs, dxs))
        self.cyy = _fsum(map(mul, dys, dys))
        self.cxy = _fsum(map(mul, dxs, dys))
        self.n = n
        self._since_resync = 0

    # --- derived statistics -------------------------------------------------------------
    def ols(self) -> tuple[float, float, float]:
        """(beta, alpha, r2) of y = alpha + beta * x over the window; NaN when x is constant."""
        if self.n < 2 or self.cxx <= 0.0:
            return math.nan, math.nan, math.nan
        beta = self.cxy / self.cxx
        alpha = self.my - beta * self.mx
        r2 = (self.cxy * self.cxy) / (self.cxx * self.cyy) if self.cyy > 0.0 else math.nan
        return beta, alpha, min(r2, 1.0)

    def correlation(self) -> float:
        if self.n < 2 or self.cxx <= 0.0 or self.cyy <= 0.0:
            return math.nan
        r = self.cxy / math.sqrt(self.cxx * self.cyy)
        return max(-1.0, min(1.0, r))

    # --- checkpointing ------------------------------------------------------------------
    def get_state(self) -> dict:
        return {
            "window": self.window,
            "buf": list(self._buf),  # (x, y) tuples: encoders write them as arrays, no copy per point
            "n": self.n,
            "m": [self.mx, self.my],
            "c": [self.cxx, self.cyy, self.cxy],
            "count": self.count,
            "since": self._since_resync,
        }

    def set_state(self, state: dict) -> None:
        self.window = _check_window(state["window"])
        self._buf = deque((float(a), float(b)) for a, b in state["buf"])
        self.n = state["n"]
        self.mx, self.my = state["m"]
        self.cxx, self.cyy, self.cxy = state["c"]
        self.count = state["count"]
        self._since_resync = state["since"]


class RollingMoments1:
    """Mean and centered second moment of one series over the last ``window`` observations."""

    __slots__ = ("window", "_buf", "n", "mean", "m2", "count", "_since_resync")

    def __init__(self, window: int) -> None:
        self.window = _check_window(window)
        self.reset()

    def reset(self) -> None:
        self._buf: deque[float] = deque()
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.count = 0
        self._since_resync = 0

    @property
    def warm(self) -> bool:
        return self.n == self.window

    def update(self, x: float) -> None:
        if not _isfinite(x):
            raise _non_finite(x)
        buf = self._buf
        buf.append(x)
        self.count += 1
        n = self.n
        mean = self.mean
        if n == self.window:  # slide: replace the oldest value, window size fixed (see RollingMoments2)
            ox = buf.popleft()
            d = x - ox
            mean2 = mean + d / n
            self.m2 += d * (x - mean2 + ox - mean)
        else:
            n += 1
            mean2 = mean + (x - mean) / n
            self.m2 += (x - mean) * (x - mean2)
            self.n = n
        self.mean = mean2
        since = self._since_resync + 1
        self._since_resync = since
        if since >= self.window:
            self._resync()

    def _resync(self) -> None:
        n = len(self._buf)
        mean = _fsum(self._buf) / n
        self.mean = mean
        ds = [x - mean for x in self._buf]
        self.m2 = _fsum(map(mul, ds, ds))
        self.n = n
        self._since_resync = 0

    def std(self, ddof: int = 1) -> float:
        if self.n - ddof <= 0:
            return math.nan
        return math.sqrt(max(self.m2, 0.0) / (self.n - ddof))

    def zscore(self, x: float, ddof: int = 1) -> float:
        """z of ``x`` against the window (x is normally the newest observation)."""
        # std() inlined (same arithmetic): this runs on every RollingZScore update.
        n = self.n
        if n - ddof <= 0:
            return math.nan
        sd = math.sqrt(max(self.m2, 0.0) / (n - ddof))
        if not sd > 0.0:
            return math.nan
        return (x - self.mean) / sd

    def get_state(self) -> dict:
        return {
            "window": self.window,
            "buf": list(self._buf),
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "count": self.count,
            "since": self._since_resync,
        }

    def set_state(self, state: dict) -> None:
        self.window = _check_window(state["window"])
        self._buf = deque(float(v) for v in state["buf"])
        self.n = state["n"]
        self.mean = state["mean"]
        self.m2 = state["m2"]
        self.count = state["count"]
        self._since_resync = state["since"]


class _Rolling:
    """Shared shape of the public rolling classes: a moments object plus the indicator protocol."""

    __slots__ = ("_m",)

    def reset(self) -> None:
        self._m.reset()

    @property
    def warm(self) -> bool:
        return self._m.warm

    @property
    def count(self) -> int:
        return self._m.count

    def get_state(self) -> dict:
        return self._m.get_state()

    def set_state(self, state: dict) -> None:
        self._m.set_state(state)


class RollingOLS(_Rolling):
    """Rolling OLS hedge ratio of y on x with intercept: ``update(x, y)`` then ``beta``/``alpha``/``r2``."""

    __slots__ = ()

    def __init__(self, window: int) -> None:
        self._m = RollingMoments2(window)

    def update(self, x: float, y: float) -> tuple[float, float, float]:
        self._m.update(x, y)
        return self._m.ols()


class RollingCorrelation(_Rolling):
    """Rolling Pearson correlation of (x, y)."""

    __slots__ = ()

    def __init__(self, window: int) -> None:
        self._m = RollingMoments2(window)

    def update(self, x: float, y: float) -> float:
        self._m.update(x, y)
        return self._m.correlation()


class RollingZScore(_Rolling):
    """Rolling z-score: (x_t - mean of the last W values) / sample std (ddof=1) of the same W values."""

    __slots__ = ()

    def __init__(self, window: int) -> None:
        self._m = RollingMoments1(window)

    def update(self, x: float) -> float:
        self._m.update(x)
        return self._m.zscore(x)
