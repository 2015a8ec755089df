"""Tick stream entries as the analytics worker sees them: ids, validity, and the group chores of
taking a pair over (create its consumer group, claim a dead owner's pending entries)."""

from __future__ import annotations

import math

import redis

from shared.messages import Tick

# Trade times outside these bounds cannot be real (and would not fit a timestamptz column).
MIN_TS_US = 946_684_800_000_000  # 2000-01-01
MAX_TS_US = 4_102_444_800_000_000  # 2100-01-01


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def invalid_reason(tick: Tick) -> str | None:
    if not (math.isfinite(tick.price) and tick.price > 0):
        return f"price {tick.price!r} is not a positive number"
    if not (math.isfinite(tick.qty) and tick.qty >= 0):
        return f"qty {tick.qty!r} is not a non-negative number"
    if not MIN_TS_US <= tick.ts_event_us < MAX_TS_US:
        return f"ts_event_us {tick.ts_event_us} is outside 2000..2100"
    return None


def check_publish_results(results: list) -> None:
    """Raise the first real error of an ack/publish pipeline. A metric XADD refused as "equal or
    smaller than the target stream top item" was published before a crash: that is the point."""
    for result in results:
        if isinstance(result, Exception) and "equal or smaller" not in str(result):
            raise result


def ensure_group(r: redis.Redis, stream: str, group: str) -> None:
    """The pair's consumer group on one leg, from the stream's start (created with the stream)."""
    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def claim_all(r: redis.Redis, stream: str, group: str, consumer: str) -> None:
    """Take over the pending entries of the group's other (dead) consumers."""
    start = "0-0"
    while True:
        # (redis-py drops the cursor from JUSTID replies, so take the full form.)
        reply = r.xautoclaim(stream, group, consumer, min_idle_time=0, start_id=start, count=1000)
        start = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if start == "0-0":
            return


def forget_idle_consumers(r: redis.Redis, stream: str, group: str, consumer: str) -> None:
    """Delete the group's other consumers that hold nothing (their entries were claimed)."""
    for info in r.xinfo_consumers(stream, group):
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name != consumer and info["pending"] == 0:
            r.xgroup_delconsumer(stream, group, name)
