"""Pair analytics: metric history and the latest snapshot of every pair."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.api.deps import DbDep, ReadAuth
from services.api.fastjson import rows_response
from services.api.params import pair_param, time_range, timeframe_param
from services.api.schemas import ErrorResponse, MetricsResponse, SnapshotResponse

router = APIRouter(prefix="/api/v1", tags=["analytics"], dependencies=[ReadAuth])
ERRORS = {422: {"model": ErrorResponse, "description": "A parameter is invalid (the field is named)"}}

METRIC_FIELDS = (
    'ts, seq, method, "window", y_price, x_price, warm, beta, alpha, r2, spread, zscore, correlation, '
    "adf_stat, adf_p, half_life, computed_at"
)


@router.get("/metrics", response_model=MetricsResponse, responses=ERRORS, summary="Metric history of a pair")
async def metric_history(
    db: DbDep,
    pair: Annotated[str, Query(description="Y~X, e.g. binance-spot.ETHUSDT~binance-spot.BTCUSDT")],
    timeframe: Annotated[str, Query(description="tick, 1s, 1m, 5m, ...")] = "1m",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="Newest rows returned")] = 2000,
) -> Response:
    pid = pair_param(pair)
    tf = timeframe_param(timeframe, bars_only=False)
    a, b = time_range(start, end)
    rows = await (
        await db.execute(
            f"SELECT * FROM (SELECT {METRIC_FIELDS} FROM pair_metrics WHERE pair = %s AND timeframe = %s "
            "AND ts >= %s AND ts <= %s ORDER BY ts DESC, seq DESC LIMIT %s) newest ORDER BY ts, seq",
            (pid, tf, a, b, limit),
        )
    ).fetchall()
    return rows_response({"pair": pid, "timeframe": tf, "count": len(rows), "data": rows})


@router.get("/snapshot", response_model=SnapshotResponse, summary="Latest metric of every pair and timeframe")
async def snapshot(db: DbDep) -> Response:
    # One index probe per (pair, timeframe) instead of a scan (pair_metrics' primary key leads with them).
    rows = await (
        await db.execute(
            f"SELECT p.id AS pair, tf AS timeframe, m.* FROM pairs p CROSS JOIN LATERAL unnest(p.timeframes) tf "
            f"CROSS JOIN LATERAL (SELECT {METRIC_FIELDS} FROM pair_metrics WHERE pair = p.id AND timeframe = tf "
            "ORDER BY ts DESC, seq DESC LIMIT 1) m ORDER BY p.id, tf"
        )
    ).fetchall()
    return rows_response({"count": len(rows), "data": rows})
