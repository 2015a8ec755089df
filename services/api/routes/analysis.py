"""On-demand analysis: the full pair report, and correlation / cointegration matrices over instruments.

The math lives in ``shared.analytics`` (``report.analyze_pair``, ``series.correlation_matrix``,
``coint.cointegration_matrix``); these routes load and align the series, run the work in the
bounded compute pool and return JSON-safe results (NaN and infinities become null).
"""

from __future__ import annotations

import importlib
from datetime import datetime
from types import ModuleType
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request

from services.api.analysis_data import aligned_closes, load_bars
from services.api.analysis_models import AnalysisRequest, AnalysisResponse, MatrixResponse
from services.api.compute import matrix_json, run_bounded
from services.api.deps import DbDep, ReadAuth
from services.api.params import bad, instrument_param, time_range, timeframe_param
from services.api.schemas import ErrorResponse
from shared.analytics.series import correlation_matrix
from shared.jsonable import jsonable

router = APIRouter(prefix="/api/v1/analysis", tags=["analysis"], dependencies=[ReadAuth])
ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid input, or too little data (the field is named)"},
    503: {"model": ErrorResponse, "description": "Compute slots busy, or the analytics module is not installed"},
    504: {"model": ErrorResponse, "description": "The computation exceeded its time bound"},
}
MIN_POINTS = 30
COINT_ORIENTATION = "matrix[i][j] is the Engle-Granger p-value of instruments[i] regressed on instruments[j]"
CORR_ORIENTATION = "matrix[i][j] is the correlation of instruments[i] and instruments[j] (symmetric)"


def load_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # the analytics modules are optional at deploy time; anything else missing is a real bug
        if not (exc.name or "").startswith("shared."):
            raise
        raise HTTPException(status_code=503, detail={"field": None, "problem": f"{exc.name} is not installed"}) from None


@router.post("", response_model=AnalysisResponse, responses=ERRORS,
             summary="Full pair report: hedge methods, ADF, Engle-Granger, Johansen, half-life, Hurst, lead-lag")
async def analyze(body: AnalysisRequest, request: Request, db: DbDep) -> AnalysisResponse:
    report = load_module("shared.analytics.report")
    if body.source is not None:
        src = body.source
        a, b = time_range(src.start, src.end)
        frames = await load_bars(db, [src.y, src.x], src.timeframe, a, b, src.max_bars)
        closes = aligned_closes(frames, [src.y, src.x], MIN_POINTS)
        y, x = closes[src.y].to_numpy(np.float64), closes[src.x].to_numpy(np.float64)
        timeframe = src.timeframe
        source: dict[str, Any] = {"kind": "database", "y": src.y, "x": src.x, "timeframe": timeframe,
                                  "first_us": int(closes.index[0]), "last_us": int(closes.index[-1])}  # fmt: skip
    else:
        y, x = np.asarray(body.y, dtype=np.float64), np.asarray(body.x, dtype=np.float64)
        timeframe = body.timeframe
        source = {"kind": "inline", "timeframe": timeframe}
    if body.window >= len(y):
        raise bad("window", f"must be smaller than the number of observations ({len(y)})")

    def work() -> dict:
        return report.analyze_pair(y, x, timeframe=timeframe, window=body.window, methods=tuple(body.methods))

    result = await run_bounded(request, work)
    return AnalysisResponse(source=source, n=len(y), report=jsonable(result))


InstrumentsQ = Annotated[str, Query(description="Comma-separated venue.SYMBOL list (2 to 40)", max_length=3000)]
TimeframeQ = Annotated[str, Query(description="Bar timeframe")]
FromQ = Annotated[datetime | None, Query(alias="from", description="UTC start (inclusive)")]
ToQ = Annotated[datetime | None, Query(alias="to", description="UTC end (inclusive)")]
MaxBarsQ = Annotated[int, Query(ge=MIN_POINTS, le=200_000, description="Newest bars used per instrument")]


async def _closes(db: Any, instruments: str, timeframe: str, start: datetime | None, end: datetime | None,
                  max_bars: int) -> tuple[list[str], str, Any]:
    ids = []
    for text in instruments.split(","):
        if text.strip():
            iid = instrument_param(text, field="instruments")
            if iid not in ids:
                ids.append(iid)
    if not 2 <= len(ids) <= 40:
        raise bad("instruments", f"give 2 to 40 distinct instruments, got {len(ids)}")
    tf = timeframe_param(timeframe, bars_only=True)
    a, b = time_range(start, end)
    frames = await load_bars(db, ids, tf, a, b, max_bars)
    return ids, tf, aligned_closes(frames, ids, MIN_POINTS)


@router.get("/correlation", response_model=MatrixResponse, responses=ERRORS,
            summary="Correlation matrix of instruments over a window of bars")
async def correlation(
    request: Request, db: DbDep, instruments: InstrumentsQ, timeframe: TimeframeQ = "1m", start: FromQ = None,
    end: ToQ = None, max_bars: MaxBarsQ = 5000,
    method: Annotated[Literal["pearson", "spearman", "kendall"], Query()] = "pearson",
    on: Annotated[Literal["returns", "prices"], Query(description="Log returns (default) or price levels")] = "returns",
) -> MatrixResponse:
    ids, tf, closes = await _closes(db, instruments, timeframe, start, end, max_bars)
    matrix = await run_bounded(request, lambda: correlation_matrix(closes, method=method, on=on))
    return MatrixResponse(instruments=ids, timeframe=tf, n=len(closes), orientation=CORR_ORIENTATION,
                          matrix=matrix_json(matrix.loc[ids, ids]))  # fmt: skip


@router.get("/cointegration", response_model=MatrixResponse, responses=ERRORS,
            summary="Engle-Granger cointegration p-value matrix of instruments")
async def cointegration(request: Request, db: DbDep, instruments: InstrumentsQ, timeframe: TimeframeQ = "1m",
                        start: FromQ = None, end: ToQ = None, max_bars: MaxBarsQ = 5000) -> MatrixResponse:
    coint = load_module("shared.analytics.coint")
    ids, tf, closes = await _closes(db, instruments, timeframe, start, end, max_bars)
    matrix = await run_bounded(request, lambda: coint.cointegration_matrix(closes))
    return MatrixResponse(instruments=ids, timeframe=tf, n=len(closes), orientation=COINT_ORIENTATION,
                          matrix=matrix_json(matrix.loc[ids, ids]))  # fmt: skip
