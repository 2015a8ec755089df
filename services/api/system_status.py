"""What the pipeline is doing, read from Redis: feeds, worker heartbeats, pair leases, group lag, dead letters.

Shared by ``/api/v1/system`` (JSON) and ``/metrics`` (Prometheus gauges). Keys are found with SCAN
(never KEYS), so a large Redis is not blocked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from shared.observability import group_lag
from shared.streams import Keys

SCAN_COUNT = 500


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _json_or_text(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _text(raw)


@dataclass
class SystemStatus:
    feeds: dict[str, Any] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    leases: dict[str, str] = field(default_factory=dict)
    lag: list[dict[str, Any]] = field(default_factory=list)
    deadletters: dict[str, int] = field(default_factory=dict)


async def _scan_values(r: aioredis.Redis, pattern: str) -> list[tuple[str, Any, int]]:
    keys = [_text(k) async for k in r.scan_iter(match=pattern, count=SCAN_COUNT)]
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.get(k)
        pipe.ttl(k)
    replies = await pipe.execute()
    return [(k, replies[2 * i], int(replies[2 * i + 1])) for i, k in enumerate(keys)]


def _heartbeat_age_s(body: Any, now: float) -> float | None:
    """Heartbeats carry ``ts_us`` (shared.lifecycle format), ``updated_us`` (ingest) or ``ts`` in seconds."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("ts_us"), int | float):
        return max(0.0, now - body["ts_us"] / 1e6)
    if isinstance(body.get("updated_us"), int | float):
        return max(0.0, now - body["updated_us"] / 1e6)
    if isinstance(body.get("ts"), int | float):
        return max(0.0, now - float(body["ts"]))
    return None


def stream_groups(sync_client: redis.Redis, streams: list[str]) -> list[dict[str, Any]]:
    """(stream, group, lag, pending) for every consumer group of the given streams (blocking; run in a thread)."""
    out = []
    for stream in streams:
        try:
            groups = sync_client.xinfo_groups(stream)
        except redis.ResponseError:  # no such stream
            continue
        for info in groups:
            name = _text(info.get("name") or info.get(b"name"))
            found = group_lag(sync_client, stream, name)
            if found is not None:
                out.append({"stream": stream, "group": name, "lag": found[0], "pending": found[1]})
    return out


async def collect(r: aioredis.Redis, sync_client: redis.Redis, keys: Keys, instruments: list[str],
                  pairs: list[str]) -> SystemStatus:
    now = time.time()
    status = SystemStatus()
    for key, raw, _ttl in await _scan_values(r, keys.feed_status_pattern):
        body = _json_or_text(raw)
        status.feeds[keys.feed_of_status_key(key)] = body
    for key, raw, ttl in await _scan_values(r, keys.heartbeat_pattern()):
        service, instance = keys.heartbeat_parts(key)
        body = _json_or_text(raw)
        status.workers.append({"service": service, "instance": instance, "age_s": _heartbeat_age_s(body, now),
                               "expires_in_s": ttl, "heartbeat": body})  # fmt: skip
    status.workers.sort(key=lambda w: (w["service"], w["instance"]))
    for key, raw, _ttl in await _scan_values(r, keys.lease_pattern):
        status.leases[keys.pair_of_lease_key(key)] = _text(raw) if raw is not None else ""
    dl_keys = sorted([_text(k) async for k in r.scan_iter(match=keys.deadletter_pattern(), count=SCAN_COUNT)])
    if dl_keys:
        pipe = r.pipeline(transaction=False)
        for k in dl_keys:
            pipe.xlen(k)
        for k, n in zip(dl_keys, await pipe.execute(), strict=True):
            status.deadletters[keys.group_of_deadletter_key(k)] = int(n)
    streams = [keys.ticks(i) for i in instruments] + [keys.metrics(p) for p in pairs]
    status.lag = await asyncio.to_thread(stream_groups, sync_client, streams)
    return status
