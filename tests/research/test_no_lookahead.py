"""No look-ahead: changing bars after t never changes a decision, fill or equity value up to t."""

from __future__ import annotations

import numpy as np
import pytest

from shared.research.backtest import BacktestResult, run_backtest
from shared.research.execution import CostModel, ExecutionParams
from shared.research.pair_bars import LegBars, PairBars
from shared.research.signals import SignalParams

COSTS = CostModel(taker_fee_bps=4.0, slippage_bps=1.0, slippage_range_frac=0.05)


def _perturb_after(bars: PairBars, k: int, seed: int) -> PairBars:
    """Bars k+1.. of both legs scaled by random factors (OHLC stays consistent: one factor per bar)."""
    rng = np.random.default_rng(seed)
    n = len(bars)

    def leg(lb: LegBars) -> LegBars:
        f = np.ones(n)
        f[k + 1 :] = rng.uniform(0.9, 1.1, n - k - 1)
        return LegBars(lb.open * f, lb.high * f, lb.low * f, lb.close * f)

    fy = np.zeros(n)
    fy[k + 1 :: 480] = 0.001  # funding only in the perturbed future
    return PairBars(bars.ts_us, leg(bars.y), leg(bars.x), fy, None)


def _closed_by(res: BacktestResult, k: int) -> list:
    return [t for t in res.trades if t.exit_bar <= k]


@pytest.mark.parametrize("method", ["ols", "kalman"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_future_bars_do_not_change_the_past(planted_bars: PairBars, method: str, fill: str) -> None:
    params = SignalParams(window=120, entry=1.5, exit=0.3, stop=3.5, max_hold_bars=200, method=method)  # type: ignore[arg-type]
    ex = ExecutionParams(fill=fill)  # type: ignore[arg-type]
    base = run_backtest(planted_bars, params, ex, COSTS)
    assert len(base.trades) >= 10  # the check means something only if trades happen on both sides of k
    for k in (700, 1500, 2400):
        other = run_backtest(_perturb_after(planted_bars, k, seed=k), params, ex, COSTS)
        np.testing.assert_array_equal(other.zscore[: k + 1], base.zscore[: k + 1])
        np.testing.assert_array_equal(other.position[: k + 1], base.position[: k + 1])
        np.testing.assert_array_equal(other.equity[: k + 1], base.equity[: k + 1])
        assert _closed_by(other, k) == _closed_by(base, k)
        # A trade entered by k keeps its entry fill even if its exit moves.
        open_base = [(t.entry_bar, t.qty_y, t.qty_x, t.entry_price_y) for t in base.trades if t.entry_bar <= k]
        open_other = [(t.entry_bar, t.qty_y, t.qty_x, t.entry_price_y) for t in other.trades if t.entry_bar <= k]
        assert open_other == open_base
        # And the future really was different.
        assert not np.array_equal(other.equity[k + 1 :], base.equity[k + 1 :])


def test_truncating_the_data_gives_the_same_past(planted_bars: PairBars) -> None:
    params = SignalParams(window=120, entry=1.5, exit=0.3)
    full = run_backtest(planted_bars, params, costs=COSTS)
    k = 1800
    cut = run_backtest(planted_bars.slice(0, k + 1), params, costs=COSTS)
    # Bar k is the last bar of the cut run, where an open position is force-closed: compare up to k-1.
    np.testing.assert_array_equal(cut.equity[:k], full.equity[:k])
    np.testing.assert_array_equal(cut.zscore, full.zscore[: k + 1])
