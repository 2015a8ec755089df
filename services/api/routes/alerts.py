"""Alert rules CRUD, events, firing history and delivery dead letters (``/api/v1/alerts``).

Writes need the API token. Every rule change is announced on ``Keys.alert_rules_changed_channel`` so
the running alerts worker reloads at once (it also reloads periodically, so a lost notice only delays).
Invalid rules get a 422 whose ``detail`` items name the field (``loc``), the problem (``msg``) and,
for rule text, the 1-based column (``ctx.position``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from redis.exceptions import RedisError

from services.api.deps import DbDep, ReadAuth, RedisDep, SettingsDep, WriteAuth
from shared.alerts.schemas import (
    CompiledRule,
    DeadDeliveryList,
    EventList,
    RuleIn,
    RuleList,
    RuleOut,
    RulePatch,
    RulePreview,
    compile_rule,
    request_from_row,
)
from shared.alerts.tree import RuleError
from shared.errors import InvalidInput
from shared.instruments import Pair

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/v1/alerts",
    tags=["alerts"],
    responses={401: {"description": "Missing or invalid X-API-Token (writes; reads when API_PROTECT_READS)"}},
)

RuleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Rule id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip (pagination)")]
NOT_FOUND = {404: {"description": "No such rule"}}
_RULE_COLUMNS = ("name", "pair", "timeframe", "kind", "expression", "spec", "enabled", "cooldown_s", "pending_n",
                 "pending_s", "channels")


def _pair_id(text: str) -> str:
    """Canonical pair id of a query parameter (``ETHUSDT~BTCUSDT`` -> ``binance-spot.ETHUSDT~binance-spot.BTCUSDT``)."""
    try:
        return Pair.parse(text).id
    except InvalidInput as exc:
        raise HTTPException(422, detail={"field": "pair", "problem": str(exc)}) from None


def _invalid(exc: RuleError, body: Any) -> RequestValidationError:
    path = (exc.path or "$").removeprefix("$").lstrip(".")
    loc: list[str | int] = ["body"]
    for part in path.replace("[", ".").replace("]", "").split("."):
        if part:
            loc.append(int(part) if part.isdigit() else part)
    ctx: dict[str, Any] = {"problem": exc.problem}
    if exc.position is not None:
        ctx["position"] = exc.position
    return RequestValidationError([{"type": "invalid_rule", "loc": tuple(loc), "msg": str(exc), "ctx": ctx}],
                                  body=body)


def _compile(body: RuleIn | RulePatch, raw: Any) -> CompiledRule:
    try:
        return compile_rule(body)  # type: ignore[arg-type]
    except RuleError as exc:
        raise _invalid(exc, raw) from None


def _params(rule: CompiledRule) -> dict[str, Any]:
    values = {k: getattr(rule, k) for k in _RULE_COLUMNS}
    values["spec"] = orjson.dumps(values["spec"]).decode()
    values["channels"] = orjson.dumps(values["channels"]).decode()
    return values


async def _notify(redis: RedisDep, settings: SettingsDep, rule_id: int, op: str) -> None:
    try:
        await redis.publish(settings.keys.alert_rules_changed_channel, orjson.dumps({"rule_id": rule_id, "op": op}))
    except RedisError as exc:  # the worker's periodic reload still picks the change up
        log.warning("could not announce rule change %s %s: %s", op, rule_id, exc)


async def _get_rule(db: DbDep, rule_id: int) -> dict[str, Any]:
    row = await (await db.execute("SELECT * FROM alert_rules WHERE id = %s", (rule_id,))).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail={"field": "rule_id", "problem": f"no rule {rule_id}"})
    return row


@router.get("/rules", response_model=RuleList, dependencies=[ReadAuth], summary="List rules")
async def list_rules(
    db: DbDep,
    pair: Annotated[str | None, Query(description="Only rules for this pair (and all-pairs rules)")] = None,
    enabled: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> RuleList:
    where, args = ["true"], []
    if pair is not None:
        where.append("(pair = %s OR pair IS NULL)")
        args.append(_pair_id(pair))
    if enabled is not None:
        where.append("enabled = %s")
        args.append(enabled)
    cond = " AND ".join(where)
    count = (await (await db.execute(f"SELECT count(*) AS n FROM alert_rules WHERE {cond}", args)).fetchone())["n"]
    cur = await db.execute(f"SELECT * FROM alert_rules WHERE {cond} ORDER BY id LIMIT %s OFFSET %s",
                           [*args, limit, offset])
    return RuleList(data=[RuleOut(**r) for r in await cur.fetchall()], count=count)


@router.post("/rules", response_model=RuleOut, status_code=201, dependencies=[WriteAuth], summary="Create a rule")
async def create_rule(body: RuleIn, db: DbDep, redis: RedisDep, settings: SettingsDep) -> RuleOut:
    rule = _compile(body, body.model_dump())
    cur = await db.execute(
        f"INSERT INTO alert_rules ({', '.join(_RULE_COLUMNS)}) VALUES ({', '.join('%(' + c + ')s' for c in _RULE_COLUMNS)})"
        " RETURNING *",
        _params(rule),
    )
    row = await cur.fetchone()
    await _notify(redis, settings, row["id"], "create")
    return RuleOut(**row)


@router.post("/rules/validate", response_model=RulePreview, dependencies=[ReadAuth],
             summary="Validate a rule without saving it (the canonical form it would get)")
async def validate_rule(body: RuleIn) -> RulePreview:
    rule = _compile(body, body.model_dump())
    return RulePreview(kind=rule.kind, pair=rule.pair, timeframe=rule.timeframe, expression=rule.expression,  # type: ignore[arg-type]
                       spec=rule.spec, channels=rule.channels)


@router.get("/rules/{rule_id}", response_model=RuleOut, dependencies=[ReadAuth], responses=NOT_FOUND)
async def get_rule(rule_id: RuleId, db: DbDep) -> RuleOut:
    return RuleOut(**await _get_rule(db, rule_id))


async def _store(db: DbDep, rule_id: int, rule: CompiledRule) -> dict[str, Any]:
    sets = ", ".join(f"{c} = %({c})s" for c in _RULE_COLUMNS)
    cur = await db.execute(f"UPDATE alert_rules SET {sets}, updated_at = now() WHERE id = %(id)s RETURNING *",
                           {**_params(rule), "id": rule_id})
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail={"field": "rule_id", "problem": f"no rule {rule_id}"})
    return row


@router.put("/rules/{rule_id}", response_model=RuleOut, dependencies=[WriteAuth], responses=NOT_FOUND,
            summary="Replace a rule")
async def replace_rule(rule_id: RuleId, body: RuleIn, db: DbDep, redis: RedisDep, settings: SettingsDep) -> RuleOut:
    row = await _store(db, rule_id, _compile(body, body.model_dump()))
    await _notify(redis, settings, rule_id, "update")
    return RuleOut(**row)


@router.patch("/rules/{rule_id}", response_model=RuleOut, dependencies=[WriteAuth], responses=NOT_FOUND,
              summary="Change some fields of a rule")
async def patch_rule(rule_id: RuleId, body: RulePatch, db: DbDep, redis: RedisDep, settings: SettingsDep) -> RuleOut:
    current = request_from_row(await _get_rule(db, rule_id))
    changes = body.model_dump(exclude_unset=True)
    if "kind" in changes and changes["kind"] != current["kind"]:
        # switching kind drops the other kind's parameters unless they are given too
        for key in ("condition", "clear", "notify_clear", "signal"):
            current.pop(key, None)
    merged = {**current, **changes}
    try:
        full = RuleIn.model_validate(merged)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)], body=changes
        ) from None
    row = await _store(db, rule_id, _compile(full, changes))
    await _notify(redis, settings, rule_id, "update")
    return RuleOut(**row)


@router.delete("/rules/{rule_id}", status_code=204, dependencies=[WriteAuth], responses=NOT_FOUND,
               summary="Delete a rule (its events stay in the history)")
async def delete_rule(rule_id: RuleId, db: DbDep, redis: RedisDep, settings: SettingsDep) -> Response:
    cur = await db.execute("DELETE FROM alert_rules WHERE id = %s RETURNING id", (rule_id,))
    if await cur.fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail={"field": "rule_id", "problem": f"no rule {rule_id}"})
    await _notify(redis, settings, rule_id, "delete")
    return Response(status_code=204)


async def _set_enabled(db: DbDep, rule_id: int, enabled: bool) -> dict[str, Any]:
    cur = await db.execute("UPDATE alert_rules SET enabled = %s, updated_at = now() WHERE id = %s RETURNING *",
                           (enabled, rule_id))
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail={"field": "rule_id", "problem": f"no rule {rule_id}"})
    return row


@router.post("/rules/{rule_id}/enable", response_model=RuleOut, dependencies=[WriteAuth], responses=NOT_FOUND)
async def enable_rule(rule_id: RuleId, db: DbDep, redis: RedisDep, settings: SettingsDep) -> RuleOut:
    row = await _set_enabled(db, rule_id, True)
    await _notify(redis, settings, rule_id, "enable")
    return RuleOut(**row)


@router.post("/rules/{rule_id}/disable", response_model=RuleOut, dependencies=[WriteAuth], responses=NOT_FOUND)
async def disable_rule(rule_id: RuleId, db: DbDep, redis: RedisDep, settings: SettingsDep) -> RuleOut:
    row = await _set_enabled(db, rule_id, False)
    await _notify(redis, settings, rule_id, "disable")
    return RuleOut(**row)


async def _events(db: DbDep, filters: dict[str, Any], start: datetime | None, end: datetime | None,
                  limit: int, offset: int) -> EventList:
    where, args = ["true"], []
    for column, value in filters.items():
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if start is not None:
        where.append("ts >= %s")
        args.append(start)
    if end is not None:
        where.append("ts < %s")
        args.append(end)
    cond = " AND ".join(where)
    count = (await (await db.execute(f"SELECT count(*) AS n FROM alert_events WHERE {cond}", args)).fetchone())["n"]
    cur = await db.execute(
        f"SELECT * FROM alert_events WHERE {cond} ORDER BY ts DESC, id DESC LIMIT %s OFFSET %s", [*args, limit, offset]
    )
    return EventList(data=await cur.fetchall(), count=count)


Start = Annotated[datetime | None, Query(description="Events at or after this time (ISO 8601, UTC if no offset)")]
End = Annotated[datetime | None, Query(description="Events before this time")]


@router.get("/events", response_model=EventList, dependencies=[ReadAuth], summary="Alert events, newest first")
async def list_events(
    db: DbDep,
    rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    pair: str | None = None,
    timeframe: str | None = None,
    kind: str | None = None,
    start: Start = None,
    end: End = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> EventList:
    filters = {"rule_id": rule_id, "pair": None if pair is None else _pair_id(pair), "timeframe": timeframe,
               "kind": kind}
    return await _events(db, filters, start, end, limit, offset)


@router.get("/rules/{rule_id}/events", response_model=EventList, dependencies=[ReadAuth], responses=NOT_FOUND,
            summary="Firing history of one rule")
async def rule_history(rule_id: RuleId, db: DbDep, start: Start = None, end: End = None, limit: Limit = 100,
                       offset: Offset = 0) -> EventList:
    await _get_rule(db, rule_id)
    return await _events(db, {"rule_id": rule_id}, start, end, limit, offset)


@router.get("/deliveries/dead", response_model=DeadDeliveryList, dependencies=[ReadAuth],
            summary="Webhook deliveries that failed every retry")
async def dead_deliveries(db: DbDep, rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None, limit: Limit = 100,
                          offset: Offset = 0) -> DeadDeliveryList:
    cond, args = ("rule_id = %s", [rule_id]) if rule_id is not None else ("true", [])
    count = (await (await db.execute(f"SELECT count(*) AS n FROM alert_delivery_deadletters WHERE {cond}", args)
                    ).fetchone())["n"]
    cur = await db.execute(
        f"SELECT * FROM alert_delivery_deadletters WHERE {cond} ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
        [*args, limit, offset],
    )
    return DeadDeliveryList(data=await cur.fetchall(), count=count)
