"""Research on stored bars: a pair backtest and a universe screen (``shared.research``), time-bounded."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from services.api.analysis_data import aligned_closes, load_bars
from services.api.analysis_models import BacktestRequest, BacktestResponse, ScreenRequest, ScreenResponse
from services.api.compute import matrix_json, run_bounded
from services.api.deps import DbDep, ReadAuth
from services.api.params import bad, time_range
from services.api.routes.analysis import ERRORS, load_module
from shared.errors import InvalidInput
from shared.jsonable import jsonable
from shared.research.backtest import run_backtest
from shared.research.execution import CostModel, ExecutionParams
from shared.research.pair_bars import PairBars
from shared.research.signals import SignalParams

router = APIRouter(prefix="/api/v1/research", tags=["research"], dependencies=[ReadAuth])


def _every(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced points, always keeping the last."""
    if n <= max_points:
        return np.arange(n)
    idx = np.linspace(0, n - 1, max_points).round().astype(np.int64)
    return np.unique(idx)


@router.post("/backtest", response_model=BacktestResponse, responses=ERRORS,
             summary="Backtest the z-score strategy on a stored pair (fees, slippage, next-open fills)")
async def backtest(body: BacktestRequest, request: Request, db: DbDep) -> BacktestResponse:
    src = body.source
    a, b = time_range(src.start, src.end)
    frames = await load_bars(db, [src.y, src.x], src.timeframe, a, b, src.max_bars)
    try:
        bars = PairBars.from_frames(frames[src.y], frames[src.x], names=(src.y, src.x))
        sig = body.signal.model_dump()
        sig["stop"] = float("inf") if sig["stop"] is None else sig["stop"]
        signal = SignalParams(**sig)
        execution = ExecutionParams(**body.execution.model_dump())
        costs = CostModel(**body.costs.model_dump())
    except InvalidInput as exc:
        raise bad("signal", str(exc)) from None
    if body.warmup_bars >= len(bars):
        raise bad("warmup_bars", f"must be smaller than the number of aligned bars ({len(bars)})")

    def work():
        return run_backtest(bars, signal, execution, costs, timeframe=src.timeframe, start=body.warmup_bars)

    result = await run_bounded(request, work)
    keep = _every(len(result.ts_us), body.max_points)
    curve = {name: jsonable(getattr(result, name)[keep]) for name in ("ts_us", "equity", "drawdown", "position",
                                                                      "zscore")}  # fmt: skip
    source: dict[str, Any] = {"y": src.y, "x": src.x, "timeframe": src.timeframe}
    return BacktestResponse(source=source, n=len(bars), stats=jsonable(result.stats), curve=curve,
                            trades=[jsonable(t.as_dict()) for t in result.trades])  # fmt: skip


@router.post("/screen", response_model=ScreenResponse, responses=ERRORS,
             summary="Screen instruments for cointegrated, mean-reverting pairs")
async def screen_pairs(body: ScreenRequest, request: Request, db: DbDep) -> ScreenResponse:
    a, b = time_range(body.start, body.end)
    research_screen = load_module("shared.research.screen")  # needs shared.analytics.meanrev
    frames = await load_bars(db, body.instruments, body.timeframe, a, b, body.max_bars)
    closes = aligned_closes(frames, body.instruments, research_screen.MIN_BARS)
    criteria = research_screen.ScreenCriteria(max_pvalue=body.max_pvalue, max_hurst=body.max_hurst,
                              min_half_life_bars=body.min_half_life_bars, max_half_life_frac=body.max_half_life_frac,
                              min_crossings_per_year=body.min_crossings_per_year)  # fmt: skip
    result = await run_bounded(request, lambda: research_screen.screen(closes, body.timeframe, criteria))
    ids = body.instruments
    return ScreenResponse(instruments=ids, timeframe=body.timeframe, n_bars=result.n_bars,
                          criteria=jsonable(criteria_values(criteria)), table=jsonable(result.table),
                          correlation=matrix_json(result.corr_matrix.loc[ids, ids]),
                          cointegration=matrix_json(result.coint_matrix.loc[ids, ids]))  # fmt: skip


def criteria_values(c: Any) -> dict[str, float]:
    return {k: float(getattr(c, k)) for k in ("max_pvalue", "max_hurst", "min_half_life_bars",
                                              "max_half_life_frac", "min_crossings_per_year")}  # fmt: skip
