"""The backtest on 9.5 days of real Binance USD-M 1m klines (ETHUSDT ~ BTCUSDT): property checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.research.backtest import run_backtest
from shared.research.execution import FREE, CostModel
from shared.research.pair_bars import PairBars
from shared.research.prices import read_price_file
from shared.research.signals import SignalParams

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def eth_btc(data_dir: Path) -> PairBars:
    k = data_dir / "binance" / "klines"
    eth = read_price_file(next(k.glob("usdm_ETHUSDT_1m_*.csv.gz")))
    btc = read_price_file(next(k.glob("usdm_BTCUSDT_1m_*.csv.gz")))
    return PairBars.from_frames(eth, btc, names=("ETHUSDT", "BTCUSDT"))


def test_overlap_is_the_documented_13737_bars(eth_btc: PairBars) -> None:
    # PROVENANCE.md: overlap 2025-06-07 08:44 -> 2025-06-16 21:40 UTC, 13 737 bars, no gaps.
    assert len(eth_btc) == 13_737
    assert set(np.diff(eth_btc.ts_us)) == {60_000_000}


@pytest.mark.parametrize("method", ["ols", "kalman"])
def test_stats_are_consistent_with_trades_and_costs_reduce_pnl(eth_btc: PairBars, method: str) -> None:
    params = SignalParams(window=300, entry=2.0, exit=0.5, stop=4.0, method=method)  # type: ignore[arg-type]
    costs = CostModel(taker_fee_bps=4.0, slippage_bps=1.0)
    paid = run_backtest(eth_btc, params, costs=costs)
    free = run_backtest(eth_btc, params, costs=FREE)
    s = paid.stats
    assert len(paid.equity) == len(eth_btc) == s.bars
    assert s.trades == len(paid.trades) > 5
    # Every position is closed by the end, so the equity change is the sum of trade PnLs.
    assert s.net_pnl == pytest.approx(sum(t.pnl for t in paid.trades), abs=1e-6)
    assert s.fees == pytest.approx(sum(t.fees for t in paid.trades), rel=1e-12)
    assert s.win_rate == pytest.approx(np.mean([t.pnl > 0 for t in paid.trades]))
    assert s.exposure == pytest.approx(np.mean(paid.position != 0))
    assert s.avg_holding_bars == pytest.approx(np.mean([t.exit_bar - t.entry_bar for t in paid.trades]))
    assert 0.0 <= s.max_drawdown < 1.0 and np.all(paid.drawdown >= 0.0)
    # Costs do not move decisions: same trades, PnL lower by exactly fees + slippage.
    assert [(t.entry_bar, t.exit_bar, t.side) for t in free.trades] == [(t.entry_bar, t.exit_bar, t.side) for t in paid.trades]
    assert s.fees > 0 and s.slippage > 0
    assert free.stats.net_pnl - s.net_pnl == pytest.approx(s.fees + s.slippage, rel=1e-9)
    # Entries never happen before the signal is warm, and fills are one bar after decisions.
    assert min(t.entry_bar for t in paid.trades) >= params.window
    for t in paid.trades:
        assert t.entry_ts_us == eth_btc.ts_us[t.entry_bar]
        assert abs(t.entry_z) >= params.entry
