"""The FastAPI application factory: connection pools in the lifespan, one router per resource."""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.api import errors
from services.api.middleware import UPLOAD_PATH_PREFIX, BodySizeLimit, RequestTimer
from services.api.schemas import ErrorResponse
from services.api.settings import ApiSettings
from services.api.telemetry import ApiMetrics, IngestRates
from shared.redis_client import connect, connect_async

# Router modules (each exposes ``router``). Order sets the order in /docs.
ROUTER_MODULES = (
    "services.api.routes.health",
    "services.api.routes.pairs",
    "services.api.routes.market",
    "services.api.routes.metrics",
    "services.api.routes.analysis",
    "services.api.routes.research",
    "services.api.routes.export",
    "services.api.routes.upload",
    "services.api.routes.live",
    "services.api.routes.ops",
)
OPTIONAL_ROUTER_MODULES = ("services.api.routes.alerts",)

DESCRIPTION = """REST and live API over the pairs-trading analytics pipeline. Times are UTC.

* **Auth**: writes (POST/PUT/PATCH/DELETE, uploads) need the `X-API-Token` header; reads need it
  only when the server sets `API_PROTECT_READS`.
* **Errors**: every 4xx answers `{"detail": {"field": "<parameter or body path>", "problem": "<what is wrong>"}}`
  (the alerts API keeps FastAPI's list of `{loc, msg, type, ctx}`, each item also carrying `field` and `problem`).
* **Live**: WebSocket `/api/v1/live/ws` and SSE `/api/v1/live/sse`; see docs/api.md for the frames.
"""


def _routers():
    for name in ROUTER_MODULES:
        yield importlib.import_module(name).router
    for name in OPTIONAL_ROUTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        yield module.router


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the validation error shape replaced by the one this api answers with."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in error_schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components["HTTPValidationError"] = error_schema
    app.openapi_schema = schema
    return schema


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = AsyncConnectionPool(
            settings.database_dsn,
            min_size=1,
            max_size=settings.db_pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=False,
        )
        await app.state.pool.open()
        app.state.redis = connect_async(settings)
        app.state.sync_redis = connect(settings)
        # live relays each hold a connection in a blocking XREAD: their own pool, sized for them
        app.state.live_redis = aioredis.Redis.from_url(
            settings.redis_dsn, max_connections=settings.live_max_clients + 8,
            socket_connect_timeout=settings.redis_timeout_s, health_check_interval=30,
        )
        app.state.live_count = 0
        app.state.compute = ThreadPoolExecutor(settings.compute_threads, thread_name_prefix="api-compute")
        app.state.compute_slots = asyncio.Semaphore(settings.compute_threads)
        try:
            yield
        finally:
            app.state.compute.shutdown(wait=False, cancel_futures=True)
            app.state.sync_redis.close()
            await app.state.live_redis.aclose()
            await app.state.redis.aclose()
            await app.state.pool.close()

    app = FastAPI(title="Pairs analytics gateway", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = ApiMetrics.create()
    app.state.ingest_rates = IngestRates()
    errors.install(app)
    app.add_middleware(
        BodySizeLimit,
        limit_for=lambda path: settings.max_upload_bytes if path.startswith(UPLOAD_PATH_PREFIX) else settings.max_body_bytes,
    )
    if settings.cors_origins:
        # explicit origins only (the setting refuses "*"), so credentials may be allowed
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "X-API-Token"],
        )
    app.add_middleware(RequestTimer, histogram=app.state.metrics.request_latency)
    for router in _routers():
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
