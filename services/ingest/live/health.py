"""Feed health: an in-memory snapshot, written to Redis as JSON, and the ``--check`` verdict.

``feed:live`` holds the latest snapshot (per connection and per stream: connected, last message
age, messages, reconnects, gaps filled/unfilled, drops). ``heartbeat:ingest:<instance>`` is the
same JSON with a TTL, so a dead process disappears on its own; ``pairs ingest --check`` fails on a missing heartbeat or a non-empty
``problems`` list (streams silent or disconnected longer than ``check_max_silence_s``).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from services.ingest.live.sequencer import StreamSequencer
from services.ingest.live.slot import ConnectionSlot
from shared.streams import HEARTBEAT_TTL_SECONDS, Keys
from shared.timeutil import now_us

FEED = "live"
STATUS_TTL_S = 30
SERVICE = "ingest"


def snapshot(slots: list[ConnectionSlot], sequencers: dict[str, StreamSequencer], publisher_stats: Any,
             rest_stats: dict[str, Any], instance: str) -> dict[str, Any]:
    now = now_us()
    connections, streams = [], []
    for slot in slots:
        conn = slot.current
        connections.append({
            "slot": slot.name,
            "url": slot.plan.label,
            "connected": conn is not None and conn.connected,
            "connection_id": conn.id if conn else None,
            "age_s": round((now - conn.opened_us) / 1e6, 3) if conn else None,
            "down_since_us": slot.down_since_us,
            "connects": slot.connects,
            "reconnects": slot.reconnects,
            "rotations": slot.rotations,
            "failed_rotations": slot.failed_rotations,
            "connect_failures": slot.connect_failures,
            "last_error": slot.last_error,
            "messages": conn.stats.messages if conn else 0,
            "malformed": conn.stats.malformed if conn else 0,
            "shutdown_notices": conn.stats.shutdown_notices if conn else 0,
        })
        for spec in slot.plan.streams:
            state = conn.streams.get(spec.name) if conn else None
            entry: dict[str, Any] = {
                "stream": spec.name,
                "instrument": spec.instrument,
                "kind": spec.kind,
                "slot": slot.name,
                "connected": conn is not None and conn.connected,
                "down_since_us": slot.down_since_us,
                "last_message_us": state.last_message_us if state else None,
                "last_message_age_s": round((now - state.last_message_us) / 1e6, 3) if state else None,
                "messages": state.messages if state else 0,
            }
            seq = sequencers.get(spec.instrument) if spec.carries_trades else None
            if seq is not None:
                entry.update(seq.stats.as_dict())
                entry["last_trade_id"] = seq.last_id
                entry["catching_up"] = seq.busy
                entry["held"] = len(seq.held)
            streams.append(entry)
    pub = publisher_stats
    return {
        "feed": FEED,
        "instance": instance,
        "updated_us": now,
        "connections": connections,
        "streams": streams,
        "publisher": {
            "published": pub.published, "dropped_overflow": pub.dropped_overflow, "queued": pub.queued,
            "rejected": pub.rejected, "redis_errors": pub.redis_errors,
            "latency_p99_us": pub.latency_p99_us,
        },
        "rest": rest_stats,
    }


async def write_status(client: aioredis.Redis, keys: Keys, status: dict[str, Any]) -> None:
    """Feed status and heartbeat, both expiring unless renewed (a dead feed must not look live)."""
    body = orjson.dumps(status, default=str)
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.feed_status(FEED), body, ex=STATUS_TTL_S)
    pipe.set(keys.heartbeat(SERVICE, status["instance"]), body, ex=HEARTBEAT_TTL_SECONDS)
    await pipe.execute()


async def clear_heartbeat(client: aioredis.Redis, keys: Keys, instance: str) -> None:
    await client.delete(keys.heartbeat(SERVICE, instance))


def problems(status: dict[str, Any] | None, now: int, max_silence_s: float) -> list[str]:
    """Why a live feed status is unhealthy (empty list: healthy)."""
    if status is None:
        return ["no live heartbeat (the ingest process is not running or stopped renewing it)"]
    out: list[str] = []
    limit_us = max_silence_s * 1e6
    for st in status.get("streams", []):
        name = f"{st.get('slot')}/{st.get('stream')}"
        if not st.get("connected"):
            down = st.get("down_since_us")
            if down is None or now - down > limit_us:
                out.append(f"{name}: disconnected for more than {max_silence_s:g} s")
            continue
        last = st.get("last_message_us")
        if last is None or now - last > limit_us:
            out.append(f"{name}: silent for more than {max_silence_s:g} s")
    return out

