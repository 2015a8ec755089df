"""CSV export of bars, metrics and ticks over any range, streamed with COPY (constant memory, any size).

The database writes CSV itself (``COPY (SELECT ...) TO STDOUT``) and each chunk is forwarded as it
arrives, so millions of rows never sit in the gateway's memory. Timestamps are ISO-8601 UTC with
microseconds plus the same instant as integer microseconds; floats are PostgreSQL's shortest exact
form, so an export re-imported gives bit-identical values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from psycopg import sql

from services.api.deps import ReadAuth
from services.api.params import instrument_param, pair_param, time_range, timeframe_param
from services.api.schemas import ErrorResponse

router = APIRouter(prefix="/api/v1/export", tags=["export"], dependencies=[ReadAuth])

_ISO = "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS timestamp"
_US = "(extract(epoch FROM ts) * 1000000)::bigint AS ts_us"

BAR_COLUMNS = ["timestamp", "ts_us", "instrument", "timeframe", "open", "high", "low", "close", "volume",
               "buy_volume", "trades"]  # fmt: skip
TICK_COLUMNS = ["timestamp", "ts_us", "instrument", "trade_id", "price", "qty", "side", "source"]
METRIC_COLUMNS = ["timestamp", "ts_us", "pair", "timeframe", "seq", "method", "window", "y_price", "x_price", "warm",
                  "beta", "alpha", "r2", "spread", "zscore", "correlation", "adf_stat", "adf_p", "half_life",
                  "computed_at"]  # fmt: skip

_BARS_SQL = (f"SELECT {_ISO}, {_US}, instrument, timeframe, open, high, low, close, volume, buy_volume, trades "
             "FROM bars WHERE instrument = {i} AND timeframe = {tf} AND ts >= {a} AND ts <= {b} ORDER BY ts")
_TICKS_SQL = (f"SELECT {_ISO}, {_US}, instrument, trade_id, price, qty, "
              "CASE WHEN side > 0 THEN 'buy' ELSE 'sell' END AS side, source "
              "FROM ticks WHERE instrument = {i} AND ts >= {a} AND ts <= {b} ORDER BY ts, trade_id")
_METRICS_SQL = (f"SELECT {_ISO}, {_US}, pair, timeframe, seq, method, \"window\", y_price, x_price, warm, beta, alpha, "
                "r2, spread, zscore, correlation, adf_stat, adf_p, half_life, "
                "to_char(computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS computed_at "
                "FROM pair_metrics WHERE pair = {p} AND timeframe = {tf} AND ts >= {a} AND ts <= {b} "
                "ORDER BY ts, seq")  # fmt: skip

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV with a header row"},
    422: {"model": ErrorResponse, "description": "A parameter is invalid (the field is named)"},
}
FromQ = Annotated[datetime | None, Query(alias="from", description="UTC start (inclusive)")]
ToQ = Annotated[datetime | None, Query(alias="to", description="UTC end (inclusive)")]


async def _copy_rows(request: Request, query: sql.Composed) -> AsyncIterator[bytes]:
    pool = request.app.state.pool
    async with pool.connection() as conn, conn.cursor() as cur:
        statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query)
        async with cur.copy(statement) as copy:
            async for chunk in copy:
                yield bytes(chunk)


def _csv(request: Request, query: sql.Composed, filename: str) -> StreamingResponse:
    return StreamingResponse(_copy_rows(request, query), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


def _stamp(a: datetime, b: datetime) -> str:
    return f"{a:%Y%m%dT%H%M%S}-{b:%Y%m%dT%H%M%S}"


@router.get("/bars.csv", response_class=StreamingResponse, responses=CSV_RESPONSE,
            summary="Bars as CSV", description="Columns: " + ", ".join(BAR_COLUMNS) + ". "
            "`timestamp` is the UTC bucket start (ISO-8601, µs), `ts_us` the same in µs since the epoch, "
            "`volume`/`buy_volume` in base units, `trades` the number of trades in the bar.")  # fmt: skip
async def export_bars(request: Request, instrument: Annotated[str, Query(description="venue.SYMBOL")],
                      timeframe: str = "1m", start: FromQ = None, end: ToQ = None) -> StreamingResponse:
    inst = instrument_param(instrument)
    tf = timeframe_param(timeframe, bars_only=True)
    a, b = time_range(start, end)
    query = sql.SQL(_BARS_SQL).format(i=sql.Literal(inst), tf=sql.Literal(tf), a=sql.Literal(a), b=sql.Literal(b))
    return _csv(request, query, f"bars_{inst}_{tf}_{_stamp(a, b)}.csv")


@router.get("/ticks.csv", response_class=StreamingResponse, responses=CSV_RESPONSE,
            summary="Stored ticks as CSV", description="Columns: " + ", ".join(TICK_COLUMNS) + ". "
            "`timestamp`/`ts_us`: trade time; `side`: aggressor side (buy or sell); `source`: live, backfill, "
            "seed, replay, simulated or upload.")  # fmt: skip
async def export_ticks(request: Request, instrument: Annotated[str, Query(description="venue.SYMBOL")],
                       start: FromQ = None, end: ToQ = None) -> StreamingResponse:
    inst = instrument_param(instrument)
    a, b = time_range(start, end)
    query = sql.SQL(_TICKS_SQL).format(i=sql.Literal(inst), a=sql.Literal(a), b=sql.Literal(b))
    return _csv(request, query, f"ticks_{inst}_{_stamp(a, b)}.csv")


@router.get("/metrics.csv", response_class=StreamingResponse, responses=CSV_RESPONSE,
            summary="Pair metrics as CSV", description="Columns: " + ", ".join(METRIC_COLUMNS) + ". "
            "`timestamp`/`ts_us`: bucket start of the bar that closed; empty cells are nulls (not warm yet); "
            "`half_life` in bars of the timeframe; `computed_at`: when the worker computed the row.")  # fmt: skip
async def export_metrics(request: Request, pair: Annotated[str, Query(description="Y~X")], timeframe: str = "1m",
                         start: FromQ = None, end: ToQ = None) -> StreamingResponse:
    pid = pair_param(pair)
    tf = timeframe_param(timeframe, bars_only=False)
    a, b = time_range(start, end)
    query = sql.SQL(_METRICS_SQL).format(p=sql.Literal(pid), tf=sql.Literal(tf), a=sql.Literal(a), b=sql.Literal(b))
    return _csv(request, query, f"metrics_{pid.replace('~', '__')}_{tf}_{_stamp(a, b)}.csv")
