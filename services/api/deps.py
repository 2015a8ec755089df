"""FastAPI dependencies, declared once as Annotated aliases and used directly in route signatures."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
import redis.asyncio as aioredis
from fastapi import Depends, Header, HTTPException, Request, status

from services.api.settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def get_db(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis


def _check_token(settings: ApiSettings, supplied: str | None) -> None:
    expected = settings.token.get_secret_value() if settings.token else None
    if expected is None:
        return
    if supplied is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail={"field": "X-API-Token", "problem": "missing or invalid API token"},
        )


def require_write_token(
    request: Request, x_api_token: Annotated[str | None, Header(alias="X-API-Token")] = None
) -> None:
    _check_token(request.app.state.settings, x_api_token)


def require_read_token(
    request: Request, x_api_token: Annotated[str | None, Header(alias="X-API-Token")] = None
) -> None:
    settings: ApiSettings = request.app.state.settings
    if settings.protect_reads:
        _check_token(settings, x_api_token)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
DbDep = Annotated[psycopg.AsyncConnection, Depends(get_db)]
RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
WriteAuth = Depends(require_write_token)
ReadAuth = Depends(require_read_token)
