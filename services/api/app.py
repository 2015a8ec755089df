"""The FastAPI application factory: connection pools in the lifespan, one router per resource."""

from __future__ import annotations

import importlib
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.api.settings import ApiSettings
from shared.redis_client import connect_async

# Router modules (each exposes ``router``). Order sets the order in /docs.
ROUTER_MODULES = (
    "services.api.routes.health",
    "services.api.routes.market",
    "services.api.routes.metrics",
)
OPTIONAL_ROUTER_MODULES = ("services.api.routes.alerts",)


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
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.pool.close()

    app = FastAPI(
        title="Pairs analytics gateway",
        version="1.0.0",
        description="REST and live API over the pairs-trading analytics pipeline. Times are UTC.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    for router in _routers():
        app.include_router(router)
    return app
