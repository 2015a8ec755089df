"""CSV upload of ticks or OHLC bars into storage, as instruments of venue ``upload`` (``upload.SYMBOL``).

Layouts and aliases: ``services.api.csv_formats``. The body is size-limited by the middleware
(``API_MAX_UPLOAD_BYTES``, 413), spooled to disk by the multipart parser, then validated and stored
row by row in a worker thread (``services.api.upload_store``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from pydantic import BaseModel, Field

from services.api.deps import SettingsDep, WriteAuth
from services.api.params import bad, timeframe_param
from services.api.schemas import ErrorResponse
from services.api.upload_store import MAX_REPORTED_ERRORS, ImportReport, import_csv
from shared.errors import InvalidInput
from shared.instruments import Instrument
from shared.timeframes import DEFAULT_TIMEFRAMES

router = APIRouter(prefix="/api/v1/upload", tags=["upload"], dependencies=[WriteAuth])


class RowProblem(BaseModel):
    line: int = Field(..., description="1-based line number in the file")
    problem: str


class UploadReport(BaseModel):
    kind: str = Field(..., examples=["ticks"])
    layout: str | None = Field(None, description="Detected layout, e.g. binance-aggTrades, header-ticks")
    lines: int = Field(..., description="Lines read")
    accepted: int = Field(..., description="Valid rows")
    rejected: int = Field(..., description="Invalid rows (not stored)")
    stored: int = Field(..., description="Rows written (duplicates of stored ticks are skipped)")
    instruments: list[str] = Field(..., examples=[["upload.BTCUSDT"]])
    bars_written: dict[str, int] = Field(..., description="Bars written per timeframe")
    errors: list[RowProblem] = Field(..., description=f"The first {MAX_REPORTED_ERRORS} invalid rows")


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid X-API-Token"},
    413: {"model": ErrorResponse, "description": "The file exceeds API_MAX_UPLOAD_BYTES"},
    422: {"model": ErrorResponse, "description": "Unrecognised layout, bad parameter, or no valid row"},
}
FileField = Annotated[UploadFile, File(description="CSV file (plain, .gz or .zip)")]
SymbolQ = Annotated[str | None, Query(description="Symbol when the file has none, e.g. BTCUSDT", max_length=40)]


def _symbol(symbol: str | None) -> str | None:
    if symbol is None:
        return None
    try:
        return Instrument("upload", Instrument.parse(symbol).symbol).symbol
    except InvalidInput as exc:
        raise bad("symbol", str(exc)) from None


async def _run(settings: Any, file: UploadFile, kind: str, **kwargs: Any) -> UploadReport:
    try:
        report: ImportReport = await asyncio.to_thread(import_csv, settings.database_dsn, file.file, kind, **kwargs)
    except InvalidInput as exc:
        raise bad("file", str(exc)) from None
    finally:
        await file.close()
    if report.accepted == 0:
        raise HTTPException(status_code=422, detail={
            "field": "file", "problem": f"no valid {kind} row in {report.lines} lines", "errors": report.errors})
    return UploadReport(**report.__dict__)


@router.post("/ticks", response_model=UploadReport, responses=RESPONSES,
             summary="Upload trades (Binance trades/aggTrades dumps or timestamp,symbol,price,qty)")
async def upload_ticks(
    settings: SettingsDep, file: FileField, symbol: SymbolQ = None,
    timeframes: Annotated[str, Query(description="Bar timeframes built from the ticks, comma separated")] =
    ",".join(DEFAULT_TIMEFRAMES),
) -> UploadReport:
    tfs = tuple(dict.fromkeys(timeframe_param(t.strip(), bars_only=True, field="timeframes")
                              for t in timeframes.split(",") if t.strip()))  # fmt: skip
    return await _run(settings, file, "ticks", symbol=_symbol(symbol), timeframe=None, bar_timeframes=tfs)


@router.post("/bars", response_model=UploadReport, responses=RESPONSES,
             summary="Upload OHLC bars (Binance klines or timestamp,open,high,low,close,volume)")
async def upload_bars(
    settings: SettingsDep, file: FileField, symbol: SymbolQ = None,
    timeframe: Annotated[str, Query(description="Timeframe of the bars in the file")] = "1m",
) -> UploadReport:
    tf = timeframe_param(timeframe, bars_only=True)
    return await _run(settings, file, "bars", symbol=_symbol(symbol), timeframe=tf, bar_timeframes=())
