"""Instruments and market data: bars (with server-side downsampling), latest prices, recent ticks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.api.deps import DbDep, ReadAuth, RedisDep, SettingsDep
from services.api.fastjson import rows_response
from services.api.params import instrument_param, time_range, timeframe_param
from services.api.schemas import (
    BarsResponse,
    ErrorResponse,
    InstrumentsResponse,
    LatestPricesResponse,
    TicksResponse,
)
from shared.errors import DecodeError
from shared.messages import Tick, from_fields
from shared.timeframes import timeframe_us

router = APIRouter(prefix="/api/v1", tags=["market data"], dependencies=[ReadAuth])
ERRORS = {422: {"model": ErrorResponse, "description": "A parameter is invalid (the field is named)"}}

_BARS = """
SELECT ts, open, high, low, close, volume, buy_volume, trades FROM (
    SELECT * FROM bars WHERE instrument = %(i)s AND timeframe = %(tf)s AND ts >= %(a)s AND ts <= %(b)s
    ORDER BY ts DESC LIMIT %(limit)s
) newest ORDER BY ts
"""
# Merge consecutive bars into buckets of %(w)s seconds (OHLC kept correct: first open, last close).
_BARS_DOWNSAMPLED = """
WITH newest AS (
    SELECT * FROM bars WHERE instrument = %(i)s AND timeframe = %(tf)s AND ts >= %(a)s AND ts <= %(b)s
    ORDER BY ts DESC LIMIT %(limit)s
)
SELECT min(ts) AS ts, (array_agg(open ORDER BY ts))[1] AS open, max(high) AS high, min(low) AS low,
       (array_agg(close ORDER BY ts DESC))[1] AS close, sum(volume) AS volume,
       sum(buy_volume) AS buy_volume, sum(trades)::int AS trades
FROM newest GROUP BY floor(extract(epoch FROM ts) / %(w)s) ORDER BY 1
"""


@router.get("/instruments", response_model=InstrumentsResponse, summary="Known instruments")
async def list_instruments(db: DbDep) -> InstrumentsResponse:
    rows = await (await db.execute("SELECT id, venue, symbol FROM instruments ORDER BY id")).fetchall()
    return InstrumentsResponse(count=len(rows), data=rows)


@router.get("/bars", response_model=BarsResponse, responses=ERRORS, summary="OHLCV bars of one instrument")
async def get_bars(
    db: DbDep,
    instrument: Annotated[str, Query(description="venue.SYMBOL, e.g. binance-spot.BTCUSDT")],
    timeframe: Annotated[str, Query(description="1s, 5s, 1m, 5m, 15m, 1h or 1d")] = "1m",
    start: Annotated[datetime | None, Query(alias="from", description="UTC start (inclusive)")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="UTC end (inclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000, description="Newest bars to consider")] = 5000,
    max_points: Annotated[int, Query(ge=10, le=100_000, description="Downsample above this many bars")] = 2000,
) -> Response:
    inst = instrument_param(instrument)
    tf = timeframe_param(timeframe, bars_only=True)
    a, b = time_range(start, end)
    params = {"i": inst, "tf": tf, "a": a, "b": b, "limit": limit}
    rows = await (await db.execute(_BARS, params)).fetchall()
    downsampled = False
    if len(rows) > max_points:
        span_s = (rows[-1]["ts"] - rows[0]["ts"]).total_seconds() + timeframe_us(tf) / 1e6
        width = max(timeframe_us(tf) / 1e6, -(-span_s // max_points))
        # align the width to whole bars so buckets never split one
        width = -(-width // (timeframe_us(tf) / 1e6)) * (timeframe_us(tf) / 1e6)
        rows = await (await db.execute(_BARS_DOWNSAMPLED, {**params, "w": width})).fetchall()
        downsampled = True
    return rows_response({"instrument": inst, "timeframe": tf, "downsampled": downsampled, "count": len(rows),
                          "data": rows})


@router.get("/prices/latest", response_model=LatestPricesResponse, summary="Latest trade per instrument (from the tick streams)")
async def latest_prices(db: DbDep, r: RedisDep, settings: SettingsDep) -> LatestPricesResponse:
    ids = [row["id"] for row in await (await db.execute("SELECT id FROM instruments ORDER BY id")).fetchall()]
    pipe = r.pipeline(transaction=False)
    for inst in ids:
        pipe.xrevrange(settings.keys.ticks(inst), count=1)
    out = []
    for inst, entries in zip(ids, await pipe.execute(), strict=True):
        if not entries:
            continue
        try:
            tick = from_fields(entries[0][1], Tick)
        except DecodeError:
            continue
        out.append({"instrument": inst, "price": tick.price, "qty": tick.qty, "side": tick.side,
                    "ts_event_us": tick.ts_event_us, "source": tick.source})  # fmt: skip
    return LatestPricesResponse(count=len(out), data=out)


@router.get("/ticks", response_model=TicksResponse, responses=ERRORS, summary="Most recent ticks of an instrument (from its stream)")
async def recent_ticks(
    r: RedisDep,
    settings: SettingsDep,
    instrument: Annotated[str, Query(description="venue.SYMBOL")],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> TicksResponse:
    inst = instrument_param(instrument)
    entries = await r.xrevrange(settings.keys.ticks(inst), count=limit)
    ticks = []
    for _, fields in reversed(entries):
        try:
            t = from_fields(fields, Tick)
        except DecodeError:
            continue
        ticks.append({"trade_id": t.trade_id, "price": t.price, "qty": t.qty, "side": t.side,
                      "ts_event_us": t.ts_event_us, "ts_ingest_us": t.ts_ingest_us, "source": t.source})  # fmt: skip
    return TicksResponse(instrument=inst, count=len(ticks), data=ticks)
