"""Walk-forward splits, selection on train data only, and parallel == serial."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shared.errors import InvalidInput
from shared.research.backtest import run_backtest
from shared.research.pair_bars import LegBars, PairBars
from shared.research.search import Grid, grid_search, walk_forward, walk_forward_splits
from shared.research.signals import SignalParams

GRID = Grid(entry=(1.5, 2.0), exit=(0.5,), window=(60, 120))


@pytest.mark.parametrize("n, train, test, step", [(100, 30, 10, None), (101, 40, 20, 5), (50, 25, 25, None)])
def test_walk_forward_splits_tile_without_overlap(n: int, train: int, test: int, step: int | None) -> None:
    splits = walk_forward_splits(n, train, test, step)
    step = test if step is None else step
    assert len(splits) == (n - train - test) // step + 1
    for k, sp in enumerate(splits):
        (a, b), (c, d) = sp.train, sp.test
        assert sp.fold == k
        assert (b - a, d - c) == (train, test)
        assert b == c  # test starts right after its train window: no overlap, no gap
        assert a == k * step and d <= n
    if step >= test:  # test windows never overlap each other
        tests = [sp.test for sp in splits]
        assert all(t1[1] <= t2[0] for t1, t2 in zip(tests, tests[1:], strict=False))


def test_walk_forward_splits_reject_bad_sizes() -> None:
    with pytest.raises(InvalidInput, match="exceeds"):
        walk_forward_splits(10, 8, 5)
    with pytest.raises(InvalidInput, match=">= 2 bars"):
        walk_forward_splits(10, 1, 5)


def test_grid_skips_invalid_combinations() -> None:
    params = Grid(entry=(0.5, 2.0), exit=(0.0, 1.0), window=(50,)).params()
    assert [(p.entry, p.exit) for p in params] == [(0.5, 0.0), (2.0, 0.0), (2.0, 1.0)]
    with pytest.raises(InvalidInput, match="no valid combination"):
        Grid(entry=(1.0,), exit=(1.0,)).params()


def test_selection_is_the_best_train_sharpe_and_matches_direct_backtests(planted_bars: PairBars) -> None:
    res = walk_forward(planted_bars, GRID, train=1000, test=500)
    assert list(res.folds["fold"]) == [0, 1, 2, 3]
    for fold, rows in res.table.groupby("fold"):
        best = rows["train_sharpe"].fillna(-math.inf).max()
        chosen = res.folds[res.folds["fold"] == fold].iloc[0]
        assert chosen["train_sharpe"] == best
    # The table's numbers are plain backtests of the windows (train: the window alone;
    # test: warmed on 2 * window earlier bars, trading from the test start).
    row = res.folds.iloc[1]
    p = SignalParams(window=int(row["window"]), entry=row["entry"], exit=row["exit"], stop=GRID.stop)
    train = run_backtest(planted_bars.slice(int(row["train_start"]), int(row["train_end"])), p)
    assert row["train_sharpe"] == train.stats.sharpe
    lo = int(row["test_start"]) - 2 * p.window
    test = run_backtest(planted_bars.slice(lo, int(row["test_end"])), p, start=2 * p.window)
    assert row["test_return"] == test.stats.total_return
    assert len(test.equity) == 500


def test_changing_test_windows_never_changes_the_choice(planted_bars: PairBars) -> None:
    """Selection sees only train data: scrambling every bar after fold 0's train window keeps fold 0's pick."""
    base = walk_forward(planted_bars, GRID, train=1000, test=500)
    rng = np.random.default_rng(1)
    f = np.ones((2, len(planted_bars)))
    f[:, 1000:] = rng.uniform(0.95, 1.05, (2, len(planted_bars) - 1000))

    def leg(lb: LegBars, g: np.ndarray) -> LegBars:
        return LegBars(lb.open * g, lb.high * g, lb.low * g, lb.close * g)

    other_bars = PairBars(planted_bars.ts_us, leg(planted_bars.y, f[0]), leg(planted_bars.x, f[1]))
    other = walk_forward(other_bars, GRID, train=1000, test=500)
    assert other.folds.iloc[0]["param_id"] == base.folds.iloc[0]["param_id"]
    assert other.folds.iloc[0]["train_sharpe"] == base.folds.iloc[0]["train_sharpe"]
    assert other.folds.iloc[0]["test_return"] != base.folds.iloc[0]["test_return"]


def test_parallel_equals_serial_and_heatmap_shape(planted_bars: PairBars) -> None:
    serial = walk_forward(planted_bars, GRID, train=1000, test=1000)
    parallel = walk_forward(planted_bars, GRID, train=1000, test=1000, workers=2)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    hm = serial.heatmap("test_sharpe")
    assert list(hm.index) == [1.5, 2.0] and list(hm.columns) == [60, 120]
    expected = serial.table[(serial.table["entry"] == 2.0) & (serial.table["window"] == 60)]["test_sharpe"].mean()
    assert hm.loc[2.0, 60] == pytest.approx(expected, rel=1e-12)
    assert serial.oos_return == pytest.approx(np.prod(1 + serial.folds["test_return"]) - 1, rel=1e-12)


def test_grid_search_in_sample(planted_bars: PairBars) -> None:
    res = grid_search(planted_bars, GRID)
    assert len(res.table) == len(GRID.params()) and len(res.folds) == 1
    assert "test_sharpe" not in res.table.columns
    assert res.folds.iloc[0]["train_sharpe"] == res.table["train_sharpe"].max()
