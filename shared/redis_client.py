"""Redis connections (hiredis parser is used automatically when installed)."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from shared.config import CommonSettings


def connect(settings: CommonSettings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_dsn,
        socket_timeout=None,  # blocking XREADGROUP calls set their own BLOCK
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )


def connect_async(settings: CommonSettings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_dsn,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )


def server_version(client: redis.Redis) -> tuple[int, ...]:
    info = client.info("server")
    return tuple(int(p) for p in str(info["redis_version"]).split(".")[:3])
