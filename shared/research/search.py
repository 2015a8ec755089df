"""Parameter grid search with walk-forward evaluation, in parallel processes.

Walk-forward (``walk_forward``): fold k trains on bars [s_k, s_k + train) and tests on the next
``test`` bars [s_k + train, s_k + train + test), with s_{k+1} = s_k + step (``step`` defaults to
``test``, so test windows tile the data without overlapping each other or their own train window).
Every grid point is backtested on the train window and, separately, on the test window; the test
backtest warms its signal engine on up to ``2 * window`` bars before the test window (past data,
never traded). The fold's parameters are the grid point with the best *train* Sharpe (ties: the
first in grid order; a NaN Sharpe, e.g. no trades, ranks last), so the choice never sees the test
window. Test metrics of the other grid points are kept in the table for overfitting analysis.

``grid_search`` is the single-fold, in-sample version over the whole series.

Work is spread over ``workers`` processes (``ProcessPoolExecutor``; the bars are sent once per
process through its initializer) with a tqdm progress bar; ``workers=1`` runs in-process.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from shared.errors import InvalidInput
from shared.research.backtest import run_backtest
from shared.research.execution import CostModel, ExecutionParams
from shared.research.pair_bars import PairBars
from shared.research.signals import SignalParams


@dataclass(frozen=True)
class Grid:
    """Values to try; combinations with exit >= entry are skipped. ``stop``/``max_hold_bars`` are fixed."""

    entry: Sequence[float] = (1.5, 2.0, 2.5)
    exit: Sequence[float] = (0.0, 0.5)
    window: Sequence[int] = (100, 300)
    method: Sequence[str] = ("ols",)
    stop: float = 4.0
    max_hold_bars: int | None = None

    def params(self) -> list[SignalParams]:
        out = []
        for method, window, entry, exit_ in itertools.product(self.method, self.window, self.entry, self.exit):
            if exit_ >= entry or entry >= self.stop:
                continue
            out.append(
                SignalParams(
                    window=int(window), entry=float(entry), exit=float(exit_), stop=self.stop,
                    max_hold_bars=self.max_hold_bars, method=method,  # type: ignore[arg-type]
                )
            )
        if not out:
            raise InvalidInput("the grid has no valid combination (each needs exit < entry < stop)")
        return out


@dataclass(frozen=True, slots=True)
class Split:
    fold: int
    train: tuple[int, int]  # [start, stop) bar indices
    test: tuple[int, int]


def walk_forward_splits(n: int, train: int, test: int, step: int | None = None) -> list[Split]:
    """Rolling train/test windows over ``n`` bars; only complete test windows are kept."""
    step = test if step is None else step
    if train < 2 or test < 2 or step < 1:
        raise InvalidInput(f"train and test need >= 2 bars and step >= 1, got train={train} test={test} step={step}")
    if train + test > n:
        raise InvalidInput(f"train + test = {train + test} bars exceeds the {n} bars available")
    splits = []
    s = 0
    while s + train + test <= n:
        splits.append(Split(len(splits), (s, s + train), (s + train, s + train + test)))
        s += step
    return splits


@dataclass(frozen=True, eq=False)
class SearchResult:
    """``table``: one row per (fold, grid point); ``folds``: the selected row of each fold."""

    table: pd.DataFrame
    folds: pd.DataFrame

    def heatmap(self, metric: str = "train_sharpe", index: str = "entry", columns: str = "window",
                method: str | None = None) -> pd.DataFrame:
        """``metric`` averaged over folds (and the other parameters) as an index x columns matrix."""
        t = self.table if method is None else self.table[self.table["method"] == method]
        if metric not in t.columns:
            raise InvalidInput(f"unknown metric {metric!r}")
        return t.pivot_table(values=metric, index=index, columns=columns, aggfunc="mean")

    @property
    def oos_return(self) -> float:
        """Compounded test-window return of the selected parameters (NaN without folds)."""
        if self.folds.empty or "test_return" not in self.folds.columns:
            return math.nan
        return float((1.0 + self.folds["test_return"]).prod() - 1.0)


# Process-local context set by the pool initializer (or directly for workers=1).
_CTX: dict[str, object] = {}


def _init(bars: PairBars, execution: ExecutionParams, costs: CostModel, timeframe: str) -> None:
    _CTX.update(bars=bars, execution=execution, costs=costs, timeframe=timeframe)


def _score(bars: PairBars, params: SignalParams, lo: int, hi: int, warmup: int, prefix: str) -> dict[str, float]:
    first = max(0, lo - warmup)
    res = run_backtest(
        bars.slice(first, hi), params, _CTX["execution"], _CTX["costs"],  # type: ignore[arg-type]
        timeframe=_CTX["timeframe"], start=lo - first,  # type: ignore[arg-type]
    )
    s = res.stats
    return {
        f"{prefix}_sharpe": s.sharpe,
        f"{prefix}_return": s.total_return,
        f"{prefix}_max_drawdown": s.max_drawdown,
        f"{prefix}_trades": s.trades,
        f"{prefix}_win_rate": s.win_rate,
    }


def _evaluate(task: tuple[Split, int, SignalParams]) -> dict[str, object]:
    split, idx, params = task
    bars: PairBars = _CTX["bars"]  # type: ignore[assignment]
    row: dict[str, object] = {
        "fold": split.fold, "param_id": idx, "method": params.method, "window": params.window,
        "entry": params.entry, "exit": params.exit,
        "train_start": split.train[0], "train_end": split.train[1],
        "test_start": split.test[0], "test_end": split.test[1],
    }
    row.update(_score(bars, params, split.train[0], split.train[1], 0, "train"))
    if split.test != split.train:
        row.update(_score(bars, params, split.test[0], split.test[1], 2 * params.window, "test"))
    return row


def _run(bars: PairBars, splits: list[Split], grid: Grid, execution: ExecutionParams | None,
         costs: CostModel | None, timeframe: str, workers: int, progress: bool) -> SearchResult:
    if workers < 1:
        raise InvalidInput(f"workers must be >= 1, got {workers}")
    execution = execution if execution is not None else ExecutionParams()
    costs = costs if costs is not None else CostModel()
    params = grid.params()
    tasks = [(sp, i, p) for sp in splits for i, p in enumerate(params)]
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(tasks), desc="backtests", unit="run", disable=not progress, leave=False)
    try:
        if workers == 1:
            _init(bars, execution, costs, timeframe)
            for task in tasks:
                rows.append(_evaluate(task))
                bar.update()
        else:
            with ProcessPoolExecutor(workers, initializer=_init, initargs=(bars, execution, costs, timeframe)) as pool:
                for fut in as_completed([pool.submit(_evaluate, t) for t in tasks]):
                    rows.append(fut.result())
                    bar.update()
    finally:
        bar.close()
    table = pd.DataFrame(rows).sort_values(["fold", "param_id"]).reset_index(drop=True)
    # Best train Sharpe per fold; NaN ranks last, ties keep grid order (stable sort).
    ranked = table.assign(_key=table["train_sharpe"].fillna(-math.inf)).sort_values(
        ["fold", "_key"], ascending=[True, False], kind="stable"
    )
    chosen = ranked.groupby("fold", sort=True).head(1).index
    table["selected"] = table.index.isin(chosen)
    folds = table[table["selected"]].drop(columns="selected").reset_index(drop=True)
    return SearchResult(table=table, folds=folds)


def walk_forward(bars: PairBars, grid: Grid, train: int, test: int, *, step: int | None = None,
                 execution: ExecutionParams | None = None, costs: CostModel | None = None,
                 timeframe: str = "1m", workers: int = 1, progress: bool = False) -> SearchResult:
    """Walk-forward evaluation of ``grid`` (see the module docstring)."""
    splits = walk_forward_splits(len(bars), train, test, step)
    return _run(bars, splits, grid, execution, costs, timeframe, workers, progress)


def grid_search(bars: PairBars, grid: Grid, *, execution: ExecutionParams | None = None,
                costs: CostModel | None = None, timeframe: str = "1m", workers: int = 1,
                progress: bool = False) -> SearchResult:
    """Every grid point backtested on the whole series (in-sample: ``train_*`` columns only)."""
    whole = Split(0, (0, len(bars)), (0, len(bars)))
    return _run(bars, [whole], grid, execution, costs, timeframe, workers, progress)
