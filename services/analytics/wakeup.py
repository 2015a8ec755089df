"""Where an idle worker's XREAD BLOCK starts on each owned tick stream.

Each pair reads through its own consumer group, so no single XREADGROUP can wait on all of a
worker's pairs. The idle wait is a plain XREAD over every owned stream instead, starting after
the newest entry the worker knows of there: it returns as soon as any pair has something new.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from services.analytics.entries import parse_id
from services.analytics.runner import PairRunner


def wake_cursors(r: redis.Redis, runners: Iterable[PairRunner], woken_at: dict[str, str]) -> dict[str, str]:
    """{stream: id} to XREAD after. Per stream: the oldest newest-entry any of its pairs has read
    (an entry one of them has not seen must wake us), but never before the entry that last woke
    us; streams none of them has read from start at the stream's last generated id."""
    cursors: dict[str, str | None] = {}
    for runner in runners:
        for leg, stream in enumerate(runner.streams):
            top = runner.top_ids[leg]
            seen = cursors.get(stream, top)
            cursors[stream] = None if top is None or seen is None else min(top, seen, key=parse_id)
    unknown = [s for s, c in cursors.items() if c is None]
    if unknown:
        pipe = r.pipeline(transaction=False)
        for stream in unknown:
            pipe.xinfo_stream(stream)
        for stream, info in zip(unknown, pipe.execute(raise_on_error=False), strict=True):
            last = info.get("last-generated-id") if isinstance(info, dict) else None
            cursors[stream] = last.decode() if isinstance(last, bytes) else (last or "$")
    out: dict[str, str] = {}
    for stream, cursor in cursors.items():
        woke = woken_at.get(stream)
        if cursor != "$" and woke is not None and parse_id(woke) > parse_id(cursor):
            cursor = woke
        out[stream] = cursor
    return out
