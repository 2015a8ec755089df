"""Instruments and pair configuration (list, detail, create, replace, patch, delete).

Every change is published as JSON (``PairChange``) on ``Keys.pairs_changed_channel``; analytics
workers subscribe and apply it without a restart. The database row is the source of truth: the
notice is sent after the commit, and a worker that missed one picks the change up when it next
reads the configuration.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, HTTPException, Path
from redis.exceptions import RedisError

from services.api.deps import DbDep, ReadAuth, RedisDep, SettingsDep, WriteAuth
from services.api.pair_config import PairIn, PairPatch, PairSettings
from services.api.params import instrument_param, pair_param
from services.api.schemas import (
    ErrorResponse,
    InstrumentDetail,
    PairChange,
    PairDetail,
    PairOut,
    PairsResponse,
)
from shared.errors import DecodeError
from shared.instruments import Instrument, Pair
from shared.messages import Tick, from_fields
from shared.streams import Keys

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["instruments and pairs"])

PairId = Annotated[str, Path(description="Y~X, e.g. binance-spot.ETHUSDT~binance-spot.BTCUSDT", max_length=150)]
InstrumentId = Annotated[str, Path(description="venue.SYMBOL, e.g. binance-spot.BTCUSDT", max_length=70)]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such pair or instrument"},
    422: {"model": ErrorResponse, "description": "A parameter or body field is invalid (the field is named)"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 401: {"model": ErrorResponse, "description": "Missing or invalid X-API-Token"},
}
_PAIR_COLUMNS = 'id, y, x, "window", timeframes, hedge_method, enabled'


def _not_found(field: str, what: str) -> HTTPException:
    return HTTPException(status_code=404, detail={"field": field, "problem": f"{what} not found"})


async def _publish(r: Any, keys: Keys, change: PairChange) -> None:
    try:
        await r.publish(keys.pairs_changed_channel, orjson.dumps(change.model_dump(mode="json")))
    except RedisError as exc:  # the row is committed; workers also re-read configuration periodically
        log.warning("pairs-changed notice not published for %s: %s", change.pair, exc)


async def _pair_row(db: psycopg.AsyncConnection, pid: str) -> dict | None:
    return await (
        await db.execute(f"SELECT {_PAIR_COLUMNS}, created_at, updated_at FROM pairs WHERE id = %s", (pid,))
    ).fetchone()


@router.get("/instruments/{instrument}", response_model=InstrumentDetail, responses=ERRORS,
            dependencies=[ReadAuth], summary="One instrument: stored bar coverage, pairs, last trade")
async def instrument_detail(instrument: InstrumentId, db: DbDep, r: RedisDep, settings: SettingsDep) -> InstrumentDetail:
    iid = instrument_param(instrument)
    row = await (await db.execute("SELECT id, venue, symbol, created_at FROM instruments WHERE id = %s",
                                  (iid,))).fetchone()  # fmt: skip
    if row is None:
        raise _not_found("instrument", f"instrument {iid}")
    # one index range scan per timeframe (the bars primary key leads with instrument, timeframe)
    coverage = await (await db.execute(
        "SELECT timeframe, count(*) AS count, min(ts) AS first, max(ts) AS last FROM bars "
        "WHERE instrument = %s GROUP BY timeframe ORDER BY timeframe", (iid,))).fetchall()  # fmt: skip
    pairs = await (await db.execute("SELECT id FROM pairs WHERE y = %s OR x = %s ORDER BY id", (iid, iid))).fetchall()
    last_price = last_us = None
    try:
        entries = await r.xrevrange(settings.keys.ticks(iid), count=1)
        if entries:
            tick = from_fields(entries[0][1], Tick)
            last_price, last_us = tick.price, tick.ts_event_us
    except DecodeError:
        pass
    return InstrumentDetail(**row, bars=coverage, pairs=[p["id"] for p in pairs], last_price=last_price,
                            last_trade_us=last_us)


@router.get("/pairs", response_model=PairsResponse, dependencies=[ReadAuth], summary="Configured pairs")
async def list_pairs(db: DbDep) -> PairsResponse:
    rows = await (await db.execute(f"SELECT {_PAIR_COLUMNS} FROM pairs ORDER BY id")).fetchall()
    return PairsResponse(count=len(rows), data=rows)


@router.get("/pairs/{pair}", response_model=PairDetail, responses=ERRORS, dependencies=[ReadAuth],
            summary="One pair's configuration and the worker that owns it")
async def pair_detail(pair: PairId, db: DbDep, r: RedisDep, settings: SettingsDep) -> PairDetail:
    pid = pair_param(pair)
    row = await _pair_row(db, pid)
    if row is None:
        raise _not_found("pair", f"pair {pid}")
    owner = await r.get(settings.keys.lease(pid))
    return PairDetail(**row, owner=owner.decode() if isinstance(owner, bytes) else owner)


@router.post("/pairs", response_model=PairChange, status_code=201, responses={
    **WRITE_ERRORS, 409: {"model": ErrorResponse, "description": "The pair already exists"}},
    dependencies=[WriteAuth], summary="Add a pair (its instruments are registered too)")  # fmt: skip
async def create_pair(body: PairIn, db: DbDep, r: RedisDep, settings: SettingsDep) -> PairChange:
    pair = Pair(Instrument.parse(body.y), Instrument.parse(body.x))
    async with db.transaction():
        for inst in pair.legs:
            await db.execute("INSERT INTO instruments (id, venue, symbol) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                             (inst.id, inst.venue, inst.symbol))  # fmt: skip
        row = await (await db.execute(
            f'INSERT INTO pairs (id, y, x, "window", timeframes, hedge_method, enabled) '
            f"VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING {_PAIR_COLUMNS}",
            (pair.id, pair.y.id, pair.x.id, body.window, body.timeframes, body.hedge_method, body.enabled),
        )).fetchone()  # fmt: skip
    if row is None:
        raise HTTPException(status_code=409, detail={"field": "body", "problem": f"pair {pair.id} already exists"})
    change = PairChange(action="created", pair=pair.id, config=PairOut(**row))
    await _publish(r, settings.keys, change)
    return change


async def _update(db: psycopg.AsyncConnection, pid: str, values: dict[str, Any]) -> dict:
    if not values:
        row = await _pair_row(db, pid)
    else:
        assignments = ", ".join(f'"{k}" = %({k})s' for k in values)  # keys come from our own models only
        row = await (await db.execute(
            f"UPDATE pairs SET {assignments}, updated_at = now() WHERE id = %(pid)s RETURNING {_PAIR_COLUMNS}",
            {**values, "pid": pid})).fetchone()  # fmt: skip
    if row is None:
        raise _not_found("pair", f"pair {pid}")
    return row


@router.put("/pairs/{pair}", response_model=PairChange, responses=WRITE_ERRORS, dependencies=[WriteAuth],
            summary="Replace a pair's settings (window, timeframes, hedge method, enabled)")
async def replace_pair(pair: PairId, body: PairSettings, db: DbDep, r: RedisDep, settings: SettingsDep) -> PairChange:
    pid = pair_param(pair)
    values = body.model_dump()  # omitted fields take their defaults: this is a replacement
    change = PairChange(action="updated", pair=pid, config=PairOut(**await _update(db, pid, values)))
    await _publish(r, settings.keys, change)
    return change


@router.patch("/pairs/{pair}", response_model=PairChange, responses=WRITE_ERRORS, dependencies=[WriteAuth],
              summary="Change some of a pair's settings")
async def patch_pair(pair: PairId, body: PairPatch, db: DbDep, r: RedisDep, settings: SettingsDep) -> PairChange:
    pid = pair_param(pair)
    values = body.model_dump(exclude_none=True)
    change = PairChange(action="updated", pair=pid, config=PairOut(**await _update(db, pid, values)))
    if values:
        await _publish(r, settings.keys, change)
    return change


@router.delete("/pairs/{pair}", response_model=PairChange, responses=WRITE_ERRORS, dependencies=[WriteAuth],
               summary="Remove a pair from configuration (its stored bars and metrics stay)")
async def delete_pair(pair: PairId, db: DbDep, r: RedisDep, settings: SettingsDep) -> PairChange:
    pid = pair_param(pair)
    row = await (await db.execute("DELETE FROM pairs WHERE id = %s RETURNING id", (pid,))).fetchone()
    if row is None:
        raise _not_found("pair", f"pair {pid}")
    change = PairChange(action="deleted", pair=pid, config=None)
    await _publish(r, settings.keys, change)
    return change
