"""Ingest liveness: a heartbeat key with the service's counters, and feed status keys for the gateway.

The heartbeat (``Keys.heartbeat("ingest", instance)``) is rewritten every ``heartbeat_interval_s``
with a TTL of ``HEARTBEAT_TTL_SECONDS``; ``pairs ingest --check`` exits 0 while it exists. A process
that dies or hangs stops renewing it and the key expires; a clean stop deletes it.

Feed status (``Keys.feed_status(feed)``, feed = "replay" | "simulated" | "live") is one JSON object
with a TTL, so a dashboard shows what is feeding the pipeline and never mistakes replay for live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.streams import HEARTBEAT_TTL_SECONDS, Keys
from shared.timeutil import now_us

log = logging.getLogger(__name__)

SERVICE = "ingest"


class Heartbeat:
    """Writes ``{service, instance, mode, pid, started_us, updated_us, **counters}`` on a timer."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        instance: str,
        *,
        mode: str,
        counters: Callable[[], Mapping[str, Any]],
        interval_s: float = 5.0,
    ) -> None:
        self._client = client
        self._key = keys.heartbeat(SERVICE, instance)
        self._instance = instance
        self._mode = mode
        self._counters = counters
        self._interval_s = min(interval_s, HEARTBEAT_TTL_SECONDS / 2)  # renew well before expiry
        self._started_us = now_us()

    @property
    def key(self) -> str:
        return self._key

    async def beat(self) -> None:
        payload = {
            "service": SERVICE,
            "instance": self._instance,
            "mode": self._mode,
            "pid": os.getpid(),
            "started_us": self._started_us,
            "updated_us": now_us(),
            "ts_us": now_us(),  # the shared.lifecycle heartbeat field, read by `--check` helpers
            **self._counters(),
        }
        await self._client.set(self._key, orjson.dumps(payload, default=str), ex=HEARTBEAT_TTL_SECONDS)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Beat until ``stop`` is set (or until cancelled); a Redis hiccup is retried at the next beat.

        Prefer ``stop`` to cancelling: cancelling a redis.asyncio command mid-flight can leave it
        hanging, so the loop finishes its current write and returns instead.
        """
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.beat()
            except RedisError as exc:
                log.warning("heartbeat write failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def clear(self) -> None:
        with contextlib.suppress(RedisError):
            await self._client.delete(self._key)


def read_heartbeat(client: redis.Redis, keys: Keys, instance: str) -> dict | None:
    raw = client.get(keys.heartbeat(SERVICE, instance))
    return None if raw is None else orjson.loads(raw)


async def publish_feed_status(client: aioredis.Redis, keys: Keys, feed: str, status: Mapping[str, Any], ttl_s: int) -> None:
    """Write the feed status JSON (``feed`` and ``updated_us`` added) with a TTL; errors are logged."""
    payload = {"feed": feed, "updated_us": now_us(), **status}
    try:
        await client.set(keys.feed_status(feed), orjson.dumps(payload, default=str), ex=ttl_s)
    except RedisError as exc:
        log.warning("feed status write failed: %s", exc)
