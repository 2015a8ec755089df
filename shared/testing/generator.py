"""Seeded generator of cointegrated tick streams (no external data needed).

Data-generating process (prices in quote currency, time in seconds):

    x(t) = x0 + sigma_x * W(t)                     a Brownian random walk (the "BTC" leg)
    s(t) = OU process: ds = -theta * s dt + sigma_s dB, s(0) = 0   (stationary spread)
    y(t) = alpha + beta * x(t) + s(t)              (the "ETH" leg)

so y and x are cointegrated with known hedge ratio ``beta`` and intercept ``alpha``, and the spread
half-life is ln(2)/theta seconds. Trades arrive on each leg as independent Poisson processes with
rates ``rate_x`` / ``rate_y`` per second; each trade prints the leg's latent price rounded to
``tick_size`` and a quantity drawn log-normally, rounded to 1e-5 (exchange-like precision). The
aggressor side is a fair coin. Everything is a function of ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shared.messages import Tick


@dataclass(frozen=True)
class CointegratedSpec:
    y_instrument: str = "sim.ETHUSDT"
    x_instrument: str = "sim.BTCUSDT"
    beta: float = 0.05
    alpha: float = 100.0
    x0: float = 60_000.0
    sigma_x: float = 3.0  # price units per sqrt(second)
    theta: float = 1.0 / 120.0  # spread mean reversion per second (half-life ~83 s)
    sigma_s: float = 0.4
    rate_x: float = 20.0  # trades per second
    rate_y: float = 12.0
    duration_s: float = 900.0
    start_us: int = 1_723_161_600_000_000  # 2024-08-09 00:00:00 UTC
    tick_size: float = 0.01
    seed: int = 7

    @property
    def half_life_s(self) -> float:
        return math.log(2.0) / self.theta


def _latent_paths(spec: CointegratedSpec, rng: np.random.Generator, dt: float) -> tuple[np.ndarray, np.ndarray]:
    steps = int(math.ceil(spec.duration_s / dt)) + 1
    x = spec.x0 + np.concatenate([[0.0], np.cumsum(rng.normal(0.0, spec.sigma_x * math.sqrt(dt), steps - 1))])
    # Exact OU discretisation.
    a = math.exp(-spec.theta * dt)
    sd = spec.sigma_s * math.sqrt((1 - a * a) / (2 * spec.theta))
    shocks = rng.normal(0.0, sd, steps)
    s = np.empty(steps)
    s[0] = 0.0
    for i in range(1, steps):
        s[i] = a * s[i - 1] + shocks[i]
    y = spec.alpha + spec.beta * x + s
    return x, y


def _arrivals(rng: np.random.Generator, rate: float, duration_s: float) -> np.ndarray:
    n = rng.poisson(rate * duration_s)
    return np.sort(rng.uniform(0.0, duration_s, n))


def _round_to(value: float, step: float) -> float:
    # Round in decimal steps and re-parse, so the float is the shortest decimal (as from an exchange).
    decimals = max(0, -int(math.floor(math.log10(step))))
    return float(f"{round(value / step) * step:.{decimals}f}")


def generate_ticks(spec: CointegratedSpec = CointegratedSpec()) -> list[Tick]:
    """All ticks of both legs, sorted by event time (ties: y leg first), trade ids contiguous per leg."""
    rng = np.random.default_rng(spec.seed)
    dt = 0.01
    x_path, y_path = _latent_paths(spec, rng, dt)
    out: list[tuple[int, int, Tick]] = []
    for leg_order, (instrument, path, rate) in enumerate(
        ((spec.y_instrument, y_path, spec.rate_y), (spec.x_instrument, x_path, spec.rate_x))
    ):
        times = _arrivals(rng, rate, spec.duration_s)
        qtys = np.round(rng.lognormal(-4.0, 1.0, len(times)), 5)
        sides = rng.random(len(times)) < 0.5
        for i, t in enumerate(times):
            ts = spec.start_us + int(t * 1_000_000)
            idx = min(int(round(t / dt)), len(path) - 1)
            tick = Tick(
                instrument=instrument,
                trade_id=i + 1,
                price=_round_to(float(path[idx]), spec.tick_size),
                qty=max(float(qtys[i]), 0.00001),
                side="buy" if sides[i] else "sell",
                ts_event_us=ts,
                ts_exchange_us=ts,
                ts_ingest_us=ts,
                source="simulated",
            )
            out.append((ts, leg_order, tick))
    out.sort(key=lambda r: (r[0], r[1]))
    return [t for _, _, t in out]


def iter_ticks(spec: CointegratedSpec = CointegratedSpec()) -> Iterator[Tick]:
    yield from generate_ticks(spec)
