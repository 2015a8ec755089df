"""Operations: Prometheus ``/metrics`` and the system status ``/api/v1/system``."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from redis.exceptions import ResponseError

from services.api.deps import DbDep, ReadAuth, RedisDep, SettingsDep
from services.api.system_status import collect
from services.api.telemetry import ApiMetrics
from shared.observability import render
from shared.streams import Keys

router = APIRouter(tags=["ops"])


class WorkerStatus(BaseModel):
    service: str
    instance: str
    age_s: float | None = Field(None, description="Seconds since the heartbeat was written")
    expires_in_s: int = Field(..., description="TTL left on the heartbeat key")
    heartbeat: Any = Field(None, description="The heartbeat body as the service wrote it (counters)")


class GroupLag(BaseModel):
    stream: str
    group: str
    lag: int = Field(..., description="Entries not yet delivered to the group")
    pending: int = Field(..., description="Delivered but not acknowledged")


class SystemResponse(BaseModel):
    feeds: dict[str, Any] = Field(..., description="Feed status by feed (live / replay / simulated)")
    workers: list[WorkerStatus]
    leases: dict[str, str] = Field(..., description="Pair -> owning analytics worker instance")
    lag: list[GroupLag]
    deadletters: dict[str, int] = Field(..., description="Dead-letter entries by consumer group")
    pairs_unowned: list[str] = Field(..., description="Enabled pairs with no lease holder")


async def _ids(db: Any) -> tuple[list[str], list[str], list[str]]:
    instruments = [r["id"] for r in await (await db.execute("SELECT id FROM instruments ORDER BY id")).fetchall()]
    rows = await (await db.execute("SELECT id, enabled FROM pairs ORDER BY id")).fetchall()
    return instruments, [r["id"] for r in rows], [r["id"] for r in rows if r["enabled"]]


@router.get("/api/v1/system", response_model=SystemResponse, dependencies=[ReadAuth],
            summary="Feeds, worker heartbeats, pair owners, consumer-group lag, dead letters")
async def system(request: Request, db: DbDep, r: RedisDep, settings: SettingsDep) -> SystemResponse:
    instruments, pairs, enabled = await _ids(db)
    status = await collect(r, request.app.state.sync_redis, settings.keys, instruments, pairs)
    return SystemResponse(feeds=status.feeds, workers=status.workers, leases=status.leases, lag=status.lag,
                          deadletters=status.deadletters,
                          pairs_unowned=[p for p in enabled if p not in status.leases])  # fmt: skip


async def _entries_added(r: aioredis.Redis, keys: Keys, instruments: list[str]) -> dict[str, int]:
    out = {}
    for inst in instruments:
        try:
            info = await r.xinfo_stream(keys.ticks(inst))
        except ResponseError:
            continue
        added = info.get("entries-added", info.get(b"entries-added"))
        if added is not None:
            out[inst] = int(added)
    return out


@router.get("/metrics", response_class=Response, dependencies=[ReadAuth],
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition text"}},
            summary="Prometheus metrics: request latency, stream lag, ingest rates, heartbeats")
async def prometheus(request: Request, db: DbDep, r: RedisDep, settings: SettingsDep) -> Response:
    metrics: ApiMetrics = request.app.state.metrics
    instruments, pairs, _ = await _ids(db)
    status = await collect(r, request.app.state.sync_redis, settings.keys, instruments, pairs)
    rates = request.app.state.ingest_rates.update(await _entries_added(r, settings.keys, instruments), time.time())
    metrics.refresh(status, rates)
    body, content_type = render(metrics.registry)
    return Response(content=body, media_type=content_type)
