"""Performance statistics of an equity curve and its trades.

Annualization: crypto trades 24/7, so a timeframe of s seconds has 365 * 86 400 / s bars a year
(525 600 for 1m). Per-bar simple returns r_t = E_t / E_{t-1} - 1 with E_{-1} = capital.

* total return = E_last / capital - 1; annualized = (1 + total)^(bars_per_year / n) - 1;
* Sharpe = mean(r) / std(r, ddof=1) * sqrt(bars_per_year) (risk-free rate 0);
* Sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(bars_per_year);
* drawdown_t = 1 - E_t / max(capital, E_0..E_t); max drawdown = max_t drawdown_t; its duration is the
  longest run of bars spent below a previous peak (until recovered, or to the end);
* Calmar = annualized return / max drawdown;
* win rate = share of trades with net PnL > 0; profit factor = sum of winning PnL / |sum of losing PnL|;
* turnover = traded notional (sum of |q| * fill price over every fill) / capital, also per year;
* exposure = share of bars ending with an open position.

Undefined ratios (no trades, zero variance, no drawdown) are NaN, or +inf for a profit factor
without losing trades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from shared.errors import InvalidInput
from shared.timeframes import US_PER_SECOND, timeframe_us

SECONDS_PER_YEAR = 365 * 86_400


def bars_per_year(timeframe: str) -> float:
    tf_us = timeframe_us(timeframe)
    if tf_us <= 0:
        raise InvalidInput(f"timeframe {timeframe!r} has no fixed bar length; use a bar timeframe")
    return SECONDS_PER_YEAR * US_PER_SECOND / tf_us


@dataclass(frozen=True, slots=True)
class Stats:
    bars: int
    trades: int
    total_return: float
    annualized_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_bars: int
    calmar: float
    win_rate: float
    profit_factor: float
    avg_holding_bars: float
    turnover: float
    turnover_per_year: float
    exposure: float
    net_pnl: float
    fees: float
    slippage: float
    funding: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def drawdown_curve(equity: np.ndarray, capital: float) -> np.ndarray:
    peak = np.maximum.accumulate(np.maximum(equity, capital))
    return 1.0 - equity / peak


def longest_underwater(dd: np.ndarray) -> int:
    """Longest run of consecutive bars with a drawdown above zero."""
    best = run = 0
    for under in dd > 1e-12:
        run = run + 1 if under else 0
        best = max(best, run)
    return best


def _annualize(growth: float, periods_per_sample: float) -> float:
    """growth^(years^-1) - 1, +inf when that overflows (a short sample with a large gain)."""
    if growth <= 0.0:
        return -1.0
    exponent = math.log(growth) * periods_per_sample
    return math.expm1(exponent) if exponent < 700.0 else math.inf


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0.0 and math.isfinite(den) else math.nan


def compute_stats(
    equity: np.ndarray,
    capital: float,
    bars_per_year_: float,
    trade_pnls: Sequence[float],
    holding_bars: Sequence[int],
    traded_notional: float,
    in_position: np.ndarray,
    costs: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Stats:
    """Statistics of ``equity`` (one value per bar close) and the trades' net PnL; see module notes.

    ``costs`` = (fees, slippage, funding) totals, reported as they are.
    """
    equity = np.asarray(equity, dtype=np.float64)
    n = len(equity)
    if n < 1:
        raise InvalidInput("equity curve is empty")
    prev = np.concatenate([[capital], equity[:-1]])
    r = equity / prev - 1.0
    total = float(equity[-1] / capital - 1.0)
    growth = 1.0 + total
    annual = _annualize(growth, bars_per_year_ / n)
    mean = float(np.mean(r))
    sd = float(np.std(r, ddof=1)) if n > 1 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    scale = math.sqrt(bars_per_year_)
    dd = drawdown_curve(equity, capital)
    max_dd = float(dd.max())
    pnls = np.asarray(trade_pnls, dtype=np.float64)
    wins = float(pnls[pnls > 0].sum())
    losses = float(-pnls[pnls < 0].sum())
    if len(pnls) == 0:
        profit_factor = math.nan
    elif losses == 0.0:
        profit_factor = math.inf if wins > 0 else math.nan
    else:
        profit_factor = wins / losses
    turnover = traded_notional / capital
    return Stats(
        bars=n,
        trades=len(pnls),
        total_return=total,
        annualized_return=annual,
        sharpe=_ratio(mean, sd) * scale,
        sortino=_ratio(mean, downside) * scale,
        max_drawdown=max_dd,
        max_drawdown_bars=longest_underwater(dd),
        calmar=_ratio(annual, max_dd),
        win_rate=float(np.mean(pnls > 0)) if len(pnls) else math.nan,
        profit_factor=profit_factor,
        avg_holding_bars=float(np.mean(holding_bars)) if len(holding_bars) else math.nan,
        turnover=turnover,
        turnover_per_year=turnover * bars_per_year_ / n,
        exposure=float(np.mean(np.asarray(in_position, dtype=bool))),
        net_pnl=float(equity[-1] - capital),
        fees=costs[0],
        slippage=costs[1],
        funding=costs[2],
    )
