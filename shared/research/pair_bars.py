"""``PairBars``: the two legs' OHLC bars on one common time axis, validated once.

Bars are left-labelled (timestamp = UTC bucket start, integer microseconds). Optional funding
series hold, per bar, the perpetual funding rate charged at that bar's timestamp (0 elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shared.errors import InvalidInput

OHLC = ("open", "high", "low", "close")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)  # a private copy: never freeze the caller's array
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class LegBars:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_close(cls, close: np.ndarray) -> LegBars:
        """Close-only data: open = high = low = close (a zero range, so range slippage is 0)."""
        c = np.asarray(close, dtype=np.float64)
        return cls(c, c, c, c)

    def __post_init__(self) -> None:
        for name in OHLC:
            object.__setattr__(self, name, _readonly(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.close)

    def slice(self, start: int, stop: int) -> LegBars:
        return LegBars(*(getattr(self, k)[start:stop] for k in OHLC))


@dataclass(frozen=True, eq=False)
class PairBars:
    """Aligned bars of y and x. ``funding_y`` / ``funding_x``: rate per bar (fraction, 0.0001 = 1 bp)."""

    ts_us: np.ndarray
    y: LegBars
    x: LegBars
    funding_y: np.ndarray | None = None
    funding_x: np.ndarray | None = None
    names: tuple[str, str] = field(default=("y", "x"))

    def __post_init__(self) -> None:
        ts = np.array(self.ts_us, dtype=np.int64)
        ts.setflags(write=False)
        object.__setattr__(self, "ts_us", ts)
        n = len(ts)
        if n < 2:
            raise InvalidInput(f"need at least 2 bars, got {n}")
        if np.any(np.diff(ts) <= 0):
            raise InvalidInput("bar timestamps must be strictly increasing")
        for leg_name, leg in (("y", self.y), ("x", self.x)):
            if len(leg) != n:
                raise InvalidInput(f"leg {leg_name} has {len(leg)} bars but there are {n} timestamps")
            for k in OHLC:
                a = getattr(leg, k)
                if not np.all(np.isfinite(a)) or np.any(a <= 0.0):
                    bad = int(np.flatnonzero(~(np.isfinite(a) & (a > 0.0)))[0])
                    raise InvalidInput(f"leg {leg_name} {k} must be positive and finite; bad value at bar {bad}")
            if np.any(leg.high < leg.low):
                raise InvalidInput(f"leg {leg_name} has a bar with high < low")
        for fname in ("funding_y", "funding_x"):
            f = getattr(self, fname)
            if f is None:
                continue
            f = _readonly(f)
            if len(f) != n or not np.all(np.isfinite(f)):
                raise InvalidInput(f"{fname} must be {n} finite rates, one per bar")
            object.__setattr__(self, fname, f)

    def __len__(self) -> int:
        return len(self.ts_us)

    def slice(self, start: int, stop: int) -> PairBars:
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[start:stop]

        return PairBars(
            self.ts_us[start:stop],
            self.y.slice(start, stop),
            self.x.slice(start, stop),
            cut(self.funding_y),
            cut(self.funding_x),
            self.names,
        )

    @classmethod
    def from_frames(cls, y: pd.DataFrame, x: pd.DataFrame, names: tuple[str, str] = ("y", "x")) -> PairBars:
        """Inner-join two frames indexed by ``ts_us`` with a ``close`` column (open/high/low optional)."""
        for leg_name, df in (("y", y), ("x", x)):
            if "close" not in df.columns:
                raise InvalidInput(f"{leg_name} bars need a 'close' column")
        idx = y.index.intersection(x.index).sort_values()
        if len(idx) < 2:
            raise InvalidInput(f"the two legs share {len(idx)} timestamps; need at least 2")
        legs = []
        for df in (y, x):
            d = df.loc[idx]
            c = d["close"].to_numpy(np.float64)
            legs.append(
                LegBars(*(d[k].to_numpy(np.float64) if k in d.columns else c for k in OHLC))
            )
        return cls(np.asarray(idx, dtype=np.int64), legs[0], legs[1], names=names)
