"""Trim policy for streams read by consumer groups: time-based, but never past what a group still needs.

Producers trim with ``XADD ... MINID ~ <floor>`` where floor = min(now - retention, the oldest entry
some group still needs). An entry is still needed when a group has not read it yet (it lies after
the group's last-delivered id) or has read but not acknowledged it (it is in the pending list). So
a consumer that falls behind, or is stopped, loses nothing; the stream then grows past its
retention until the group catches up, which the lag metrics make visible (see docs/streams.md).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import ResponseError


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def min_id(a: str, b: str | None) -> str:
    return a if b is None or parse_id(a) <= parse_id(b) else b


async def oldest_needed_ids(r: aioredis.Redis, streams: list[str]) -> dict[str, str | None]:
    """``oldest_needed_id`` for many streams in two pipelined round trips (the publisher's refresh)."""
    pipe = r.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(stream)
    infos = await pipe.execute(raise_on_error=False)
    pipe = r.pipeline(transaction=False)
    asked: list[tuple[str, tuple[int, int]]] = []
    out: dict[str, str | None] = {}
    for stream, groups in zip(streams, infos, strict=True):
        out[stream] = None
        if isinstance(groups, ResponseError):  # no such stream yet
            continue
        for info in groups:
            ms, seq = parse_id(info["last-delivered-id"])
            asked.append((stream, (ms, seq + 1)))  # everything after the last delivered entry is unread
            pipe.xpending(stream, info["name"])
    replies = await pipe.execute() if asked else []
    needed: dict[str, list[tuple[int, int]]] = {}
    for (stream, after_last), pending in zip(asked, replies, strict=True):
        needed.setdefault(stream, []).append(after_last)
        if pending["pending"]:
            needed[stream].append(parse_id(pending["min"]))
    for stream, ids in needed.items():
        out[stream] = format_id(min(ids))
    return out


async def oldest_needed_id(r: aioredis.Redis, stream: bytes | str) -> str | None:
    """The smallest entry id any consumer group of ``stream`` has not acknowledged; None without groups."""
    try:
        groups = await r.xinfo_groups(stream)
    except ResponseError:  # no such stream yet
        return None
    needed: list[tuple[int, int]] = []
    for info in groups:
        ms, seq = parse_id(info["last-delivered-id"])
        needed.append((ms, seq + 1))  # everything after the last delivered entry is unread
        pending = await r.xpending(stream, info["name"])
        if pending["pending"]:
            needed.append(parse_id(pending["min"]))
    return format_id(min(needed)) if needed else None
