"""Seeded bar-level generator of an instrument universe with planted cointegrated pairs.

Data-generating process (per bar, everything a function of ``seed``):

* ``n_pairs`` planted pairs (y, x): x is a geometric random walk
  x_t = x_0 * exp(sum of N(0, sigma^2) log returns); the spread s is an AR(1)
  s_t = phi * s_{t-1} + e_t with phi = 2^(-1 / half_life_bars) (so its half-life is
  ``half_life_bars``) whose innovations have standard deviation ``spread_noise_ratio`` times
  that of y's random-walk part (beta * x_0 * sigma); and y_t = alpha + beta * x_t + s_t with
  beta * x_0 = 0.8 y_0 and alpha = 0.2 y_0 (so y stays positive and, as for real pairs, the
  common random walk dominates y's bar-to-bar moves).
  Each planted pair has its own x, so the only cointegrated pairs are the planted ones.
* every other instrument is an independent geometric random walk with the same ``sigma``.

Bars: close as above; open = previous close; high / low = max / min(open, close) stretched by a
half-normal fraction of ``sigma``. Instruments are shuffled, so planted pairs are not adjacent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.timeframes import timeframe_us


@dataclass(frozen=True)
class PlantedPair:
    y: str
    x: str
    beta: float
    alpha: float
    half_life_bars: float


@dataclass(frozen=True)
class UniverseSpec:
    n_instruments: int = 20
    n_pairs: int = 3
    n_bars: int = 5_000
    timeframe: str = "1m"
    start_us: int = 1_749_254_400_000_000  # 2025-06-07 00:00:00 UTC
    sigma: float = 0.001  # per-bar log-return standard deviation of every random walk
    half_life_bars: tuple[float, float] = (5.0, 30.0)  # planted half-lives drawn uniformly in this range
    spread_noise_ratio: float = 0.3
    seed: int = 11

    def __post_init__(self) -> None:
        if self.n_pairs * 2 > self.n_instruments:
            raise ValueError(f"{self.n_pairs} planted pairs need {2 * self.n_pairs} instruments, have {self.n_instruments}")
        if self.n_bars < 2:
            raise ValueError("n_bars must be >= 2")


@dataclass(frozen=True, eq=False)
class Universe:
    names: tuple[str, ...]
    ts_us: np.ndarray
    open: np.ndarray  # (n_bars, n_instruments)
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    planted: tuple[PlantedPair, ...]

    def closes(self) -> pd.DataFrame:
        """Close prices, index ``ts_us``, one column per instrument."""
        return pd.DataFrame(self.close, index=pd.Index(self.ts_us, name="ts_us"), columns=list(self.names))

    def bars(self, name: str) -> pd.DataFrame:
        """One instrument's OHLC bars indexed by ``ts_us``."""
        j = self.names.index(name)
        return pd.DataFrame(
            {"open": self.open[:, j], "high": self.high[:, j], "low": self.low[:, j], "close": self.close[:, j]},
            index=pd.Index(self.ts_us, name="ts_us"),
        )

    def planted_set(self) -> set[frozenset[str]]:
        return {frozenset((p.y, p.x)) for p in self.planted}


def _random_walk(rng: np.random.Generator, n: int, x0: float, sigma: float) -> np.ndarray:
    steps = rng.normal(0.0, sigma, n - 1)
    return x0 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    shocks = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), n)
    s = np.empty(n)
    s[0] = rng.normal(0.0, sd)
    for t in range(1, n):
        s[t] = phi * s[t - 1] + shocks[t]
    return s


def generate_universe(spec: UniverseSpec = UniverseSpec()) -> Universe:
    rng = np.random.default_rng(spec.seed)
    n, k = spec.n_bars, spec.n_instruments
    close = np.empty((n, k))
    names = [f"sim.U{i:03d}USDT" for i in range(k)]
    order = rng.permutation(k)
    planted: list[PlantedPair] = []
    for p in range(spec.n_pairs):
        iy, ix = int(order[2 * p]), int(order[2 * p + 1])
        x0 = float(rng.uniform(20.0, 2_000.0))
        y0 = float(rng.uniform(20.0, 2_000.0))
        beta = 0.8 * y0 / x0
        alpha = 0.2 * y0
        hl = float(rng.uniform(*spec.half_life_bars))
        x = _random_walk(rng, n, x0, spec.sigma)
        phi = 2.0 ** (-1.0 / hl)
        innovation_sd = spec.spread_noise_ratio * beta * x0 * spec.sigma
        s = _ar1(rng, n, phi, innovation_sd / math.sqrt(1.0 - phi * phi))
        close[:, ix] = x
        close[:, iy] = alpha + beta * x + s
        planted.append(PlantedPair(names[iy], names[ix], beta, alpha, hl))
    for j in order[2 * spec.n_pairs :]:
        close[:, int(j)] = _random_walk(rng, n, float(rng.uniform(20.0, 2_000.0)), spec.sigma)
    open_ = np.vstack([close[:1], close[:-1]])
    stretch = np.abs(rng.normal(0.0, spec.sigma, (2, n, k)))
    high = np.maximum(open_, close) * (1.0 + stretch[0])
    low = np.minimum(open_, close) * (1.0 - stretch[1])
    ts = spec.start_us + np.arange(n, dtype=np.int64) * timeframe_us(spec.timeframe)
    return Universe(tuple(names), ts, open_, high, low, close, tuple(planted))
