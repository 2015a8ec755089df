"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api.deps import DbDep, RedisDep, SettingsDep
from shared.db import migrate

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    redis: str
    database: str
    migrations: str


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down or migrations are not at head"}},
    summary="Readiness: Redis, database and migrations at head",
)
async def ready(settings: SettingsDep, db: DbDep, r: RedisDep):
    checks = {"redis": "ok", "database": "ok", "migrations": "ok"}
    try:
        await r.ping()
    except Exception as exc:  # any failure means not ready; the message says which
        checks["redis"] = f"error: {exc}"
    try:
        await (await db.execute("SELECT 1")).fetchone()
        row = await (await db.execute("SELECT version_num FROM alembic_version")).fetchone()
        head = await asyncio.to_thread(migrate.head_revision)
        current = row["version_num"] if row else None
        if current != head:
            checks["migrations"] = f"at {current}, head is {head}"
    except Exception as exc:
        checks["database"] = f"error: {exc}"
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ok else "not ready", **checks)
    return body if ok else JSONResponse(status_code=503, content=body.model_dump())
