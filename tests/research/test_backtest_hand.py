"""The backtest on a six-bar series whose trades, PnL, costs and equity are worked out by hand.

Strategy: fixed hedge beta = 0.5, z-score window 3, entry 1.0, exit 0.2, stop 3.0 (|z| over 3
points can never exceed 2/sqrt(3) = 1.1547, so the stop cannot fire), notional N = 1000 of y,
capital 10 000, beta-neutral sizing.

Spread s = y - 0.5 x = 0, 0, -3, -3, 0, 1 (see tests/research/handmade.py). z of the last 3 spreads
(sample std, ddof 1):
  bar 0, 1: window not full -> no signal.
  bar 2: [0, 0, -3]: mean -1, deviations 1, 1, -2, sd = sqrt(6/2) = sqrt(3), z = -2/sqrt(3) = -1.1547
         <= -1.0 -> enter long spread (long y, short x).
  bar 3: [0, -3, -3]: mean -2, sd sqrt(3), z = -1/sqrt(3) = -0.577 < -0.2 -> hold.
  bar 4: [-3, -3, 0]: mean -2, z = +2/sqrt(3) = 1.1547 >= -0.2 -> exit.
  bar 5: [-3, 0, 1]: mean -2/3, sd sqrt(13/3) = 2.0817, z = (5/3)/2.0817 = 0.8006 -> |z| < 1, flat.

Next-open fills: enter at bar 3's open (y 46, x 99), exit at bar 5's open (y 53, x 105).
q_y = 1000 / 46 = 21.73913; q_x = -0.5 q_y = -10.86957.
Gross PnL = q_y (53 - 46) + q_x (105 - 99) = 7 q_y - 3 q_y = 4 q_y = 86.9565.
Equity at closes: bars 0-2: 10 000; bar 3: 10 000 + q_y (47 - 46) - 0.5 q_y (100 - 99) = 10 000 + 0.5 q_y;
bar 4: 10 000 + q_y (52 - 46) - 0.5 q_y (104 - 99) = 10 000 + 3.5 q_y; bar 5 (flat): 10 000 + 4 q_y.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.research.backtest import run_backtest
from shared.research.execution import FREE, CostModel, ExecutionParams
from shared.research.signals import SignalParams
from tests.research.handmade import hand_pair

PARAMS = SignalParams(window=3, entry=1.0, exit=0.2, stop=3.0, method="fixed", fixed_beta=0.5)
EXEC = ExecutionParams(capital=10_000.0, notional=1_000.0, sizing="beta", fill="next_open")
Q_Y = 1000.0 / 46.0


def test_zscores_and_trade_match_the_hand_calculation() -> None:
    res = run_backtest(hand_pair(), PARAMS, EXEC, FREE)
    expected_z = [math.nan, math.nan, -2 / math.sqrt(3), -1 / math.sqrt(3), 2 / math.sqrt(3), (5 / 3) / math.sqrt(13 / 3)]
    np.testing.assert_allclose(res.zscore, expected_z, rtol=1e-12, equal_nan=True)
    assert len(res.trades) == 1
    tr = res.trades[0]
    assert (tr.side, tr.entry_bar, tr.exit_bar, tr.holding_bars, tr.exit_reason) == (1, 3, 5, 2, "exit")
    assert tr.qty_y == pytest.approx(Q_Y, rel=1e-12)
    assert tr.qty_x == pytest.approx(-0.5 * Q_Y, rel=1e-12)
    assert (tr.entry_price_y, tr.entry_price_x, tr.exit_price_y, tr.exit_price_x) == (46.0, 99.0, 53.0, 105.0)
    assert tr.gross_pnl == pytest.approx(4 * Q_Y, rel=1e-12)
    assert tr.pnl == pytest.approx(4 * Q_Y, rel=1e-12)
    np.testing.assert_allclose(
        res.equity, 10_000 + np.array([0, 0, 0, 0.5, 3.5, 4.0]) * Q_Y, rtol=1e-13
    )
    np.testing.assert_array_equal(res.position, [0, 0, 0, 1, 1, 0])


def test_close_fills_trade_at_the_decision_bar() -> None:
    # Fill on the decision bar's close: enter at bar 2 (y 46, x 98), exit at bar 4 (y 52, x 104):
    # gross = q_y (52 - 46) - 0.5 q_y (104 - 98) = 3 q_y with q_y = 1000 / 46.
    res = run_backtest(hand_pair(), PARAMS, ExecutionParams(capital=10_000.0, notional=1_000.0, fill="close"), FREE)
    (tr,) = res.trades
    assert (tr.entry_bar, tr.exit_bar) == (2, 4)
    assert tr.pnl == pytest.approx(3 * Q_Y, rel=1e-12)
    assert res.equity[-1] == pytest.approx(10_000 + 3 * Q_Y, rel=1e-13)


def test_dollar_neutral_sizing() -> None:
    # Dollar-neutral: q_y = 1000/46, q_x = -1000/99 (entry at bar 3 open).
    # Gross = (1000/46)(53 - 46) - (1000/99)(105 - 99) = 152.1739 - 60.6061.
    res = run_backtest(hand_pair(), PARAMS, ExecutionParams(capital=10_000.0, notional=1_000.0, sizing="dollar"), FREE)
    (tr,) = res.trades
    assert tr.qty_x == pytest.approx(-1000.0 / 99.0, rel=1e-12)
    assert tr.pnl == pytest.approx(1000 / 46 * 7 - 1000 / 99 * 6, rel=1e-12)


def test_fees_and_bps_slippage_cost_exactly_the_expected_amount() -> None:
    costs = CostModel(taker_fee_bps=10.0, slippage_bps=5.0)
    free = run_backtest(hand_pair(), PARAMS, EXEC, FREE).trades[0]
    paid = run_backtest(hand_pair(), PARAMS, EXEC, costs).trades[0]
    q_x = 0.5 * Q_Y
    s = 5e-4
    # Adverse fills: buy y at 46 (1 + s), sell x at 99 (1 - s); sell y at 53 (1 - s), buy x at 105 (1 + s).
    fills = [(Q_Y, 46 * (1 + s)), (q_x, 99 * (1 - s)), (Q_Y, 53 * (1 - s)), (q_x, 105 * (1 + s))]
    slippage = s * (Q_Y * 46 + q_x * 99 + Q_Y * 53 + q_x * 105)
    fees = 1e-3 * sum(q * p for q, p in fills)
    assert paid.slippage == pytest.approx(slippage, rel=1e-12)
    assert paid.fees == pytest.approx(fees, rel=1e-12)
    assert free.pnl - paid.pnl == pytest.approx(fees + slippage, rel=1e-12)
    assert paid.entry_price_y == pytest.approx(46 * (1 + s), rel=1e-15)
    assert paid.exit_price_x == pytest.approx(105 * (1 + s), rel=1e-15)


def test_range_slippage_and_maker_fee() -> None:
    # Range slippage uses the decision bar (the fill bar's predecessor for next-open fills), with
    # high = max(open, close) + 1 and low = min(open, close) - 1:
    # entry decided on bar 2: y open 46.5 close 46 -> 47.5 - 45 = 2.5; x open 99 close 98 -> 100 - 97 = 3;
    # exit decided on bar 4:  y open 51 close 52 -> 53 - 50 = 3;       x open 103 close 104 -> 105 - 102 = 3.
    # Adverse moves per unit: 0.25 (y entry), 0.3 (x entry), 0.3 (y exit), 0.3 (x exit).
    costs = CostModel(taker_fee_bps=10.0, maker_fee_bps=1.0, liquidity="maker", slippage_range_frac=0.1)
    free = run_backtest(hand_pair(1.0), PARAMS, EXEC, FREE).trades[0]
    paid = run_backtest(hand_pair(1.0), PARAMS, EXEC, costs).trades[0]
    q_x = 0.5 * Q_Y
    slippage = 0.25 * Q_Y + 0.3 * q_x + 0.3 * Q_Y + 0.3 * q_x
    fees = 1e-4 * (Q_Y * 46.25 + q_x * 98.7 + Q_Y * 52.7 + q_x * 105.3)
    assert paid.slippage == pytest.approx(slippage, rel=1e-12)
    assert paid.fees == pytest.approx(fees, rel=1e-12)
    assert free.pnl - paid.pnl == pytest.approx(fees + slippage, rel=1e-12)


def test_funding_is_charged_on_the_position_held_into_the_bar() -> None:
    # Position held into bar 4 (entered at bar 3's open): y pays q_y * open_y[4] * 0.001 = q_y * 51e-3,
    # the short x leg receives 0.5 q_y * open_x[4] * 0.002 = 0.5 q_y * 0.206.
    # Rates at bar 3 (entry fill bar: position not yet held) and bar 0 (flat) must not count.
    bars = hand_pair()
    fy = np.array([0.01, 0, 0, 0.01, 0.001, 0])
    fx = np.array([0.01, 0, 0, 0.01, 0.002, 0])
    funded = type(bars)(bars.ts_us, bars.y, bars.x, fy, fx)
    tr = run_backtest(funded, PARAMS, EXEC, FREE).trades[0]
    expected = -Q_Y * 51 * 0.001 + 0.5 * Q_Y * 103 * 0.002
    assert tr.funding == pytest.approx(expected, rel=1e-12)
    assert tr.pnl == pytest.approx(4 * Q_Y + expected, rel=1e-12)


def test_stats_agree_with_the_trade_list() -> None:
    res = run_backtest(hand_pair(), PARAMS, EXEC, CostModel(taker_fee_bps=4.0, slippage_bps=1.0))
    s = res.stats
    (tr,) = res.trades
    assert s.trades == 1 and s.win_rate == 1.0 and s.profit_factor == math.inf
    assert s.net_pnl == pytest.approx(tr.pnl, rel=1e-12)
    assert s.fees == pytest.approx(tr.fees, rel=1e-12)
    assert s.exposure == pytest.approx(2 / 6)
    assert s.avg_holding_bars == 2.0
    traded = abs(tr.qty_y) * (tr.entry_price_y + tr.exit_price_y) + abs(tr.qty_x) * (tr.entry_price_x + tr.exit_price_x)
    assert s.turnover == pytest.approx(traded / 10_000.0, rel=1e-12)


def test_open_position_is_closed_at_the_last_close() -> None:
    # Cut after bar 4: the exit decided on bar 4 has no next open, so the position closes at bar 4's close
    # (y 52, x 104): gross = q_y (52 - 46) - 0.5 q_y (104 - 99) = 3.5 q_y.
    res = run_backtest(hand_pair().slice(0, 5), PARAMS, EXEC, FREE)
    (tr,) = res.trades
    assert (tr.exit_bar, tr.exit_reason) == (4, "end")
    assert tr.pnl == pytest.approx(3.5 * Q_Y, rel=1e-12)
