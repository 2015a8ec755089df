"""Performance statistics on hand-built equity curves whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shared.errors import InvalidInput
from shared.research.stats import bars_per_year, compute_stats, drawdown_curve, longest_underwater


def _stats(equity, pnls=(), holding=(), traded=0.0, in_pos=None, bpy=525_600.0):
    equity = np.asarray(equity, dtype=float)
    in_pos = np.zeros(len(equity), bool) if in_pos is None else np.asarray(in_pos)
    return compute_stats(equity, 100.0, bpy, list(pnls), list(holding), traded, in_pos)


def test_bars_per_year_is_24_7() -> None:
    assert bars_per_year("1m") == 365 * 24 * 60
    assert bars_per_year("1s") == 365 * 86_400
    assert bars_per_year("5m") == 365 * 24 * 12
    with pytest.raises(InvalidInput, match="no fixed bar length"):
        bars_per_year("tick")


def test_constant_growth_curve() -> None:
    # 1 % per bar for 10 bars from capital 100: total 1.01^10 - 1; over a 1 000-bar year the
    # annualized return is 1.01^1000 - 1; no drawdown.
    eq = 100 * 1.01 ** np.arange(1, 11)
    s = _stats(eq, bpy=1000.0)
    assert s.total_return == pytest.approx(1.01**10 - 1, rel=1e-12)
    assert s.annualized_return == pytest.approx(1.01**1000 - 1, rel=1e-9)
    assert s.max_drawdown == 0.0 and s.max_drawdown_bars == 0
    assert math.isnan(s.calmar)
    assert math.isnan(s.sortino)  # no negative return: downside deviation 0


def test_drawdown_depth_and_duration() -> None:
    # Peak 120 at bar 1, trough 90 (25 % below) at bar 3, back to 120 at bar 6:
    # underwater bars 2..5 (4 bars). A later dip 130 -> 117 (10 %) lasts 1 bar.
    eq = [110, 120, 100, 90, 100, 115, 120, 130, 117, 131]
    s = _stats(eq)
    assert s.max_drawdown == pytest.approx(0.25, rel=1e-12)
    assert s.max_drawdown_bars == 4
    np.testing.assert_allclose(drawdown_curve(np.array(eq, float), 100.0)[[3, 8]], [0.25, 0.1], rtol=1e-12)
    assert longest_underwater(np.array([0, 0.1, 0, 0.2, 0.1, 0.3])) == 3


def test_sharpe_sortino_against_pandas() -> None:
    # Oracle: pandas pct_change of [capital, equity...]; Sharpe = mean/std(ddof=1) * sqrt(bars/year);
    # Sortino's downside deviation = sqrt(mean(min(r, 0)^2)) (target 0).
    rng = np.random.default_rng(3)
    eq = 100 * np.cumprod(1 + rng.normal(2e-4, 1e-3, 500))
    r = pd.Series(np.concatenate([[100.0], eq])).pct_change().dropna()
    s = _stats(eq)
    scale = math.sqrt(525_600)
    assert s.sharpe == pytest.approx(r.mean() / r.std() * scale, rel=1e-9)
    assert s.sortino == pytest.approx(r.mean() / math.sqrt((r.clip(upper=0) ** 2).mean()) * scale, rel=1e-9)
    assert s.calmar == pytest.approx(s.annualized_return / s.max_drawdown, rel=1e-12)


def test_trade_statistics() -> None:
    # Wins 10 + 20 = 30, losses 5 + 5 = 10 -> profit factor 3, win rate 2/4.
    s = _stats([100, 101], pnls=[10, -5, 20, -5], holding=[1, 3, 5, 7], traded=250.0, in_pos=[True, False])
    assert s.profit_factor == pytest.approx(3.0)
    assert s.win_rate == 0.5
    assert s.avg_holding_bars == 4.0
    assert s.turnover == pytest.approx(2.5)
    assert s.turnover_per_year == pytest.approx(2.5 * 525_600 / 2)
    assert s.exposure == 0.5
    only_wins = _stats([100, 101], pnls=[1.0], holding=[1])
    assert only_wins.profit_factor == math.inf
    none = _stats([100, 100])
    assert math.isnan(none.win_rate) and math.isnan(none.profit_factor) and math.isnan(none.sharpe)
