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
    """{stream: id} to XREAD after: per stream, the oldest position among the pairs reading it (an
    entry one of them has not read must wake us), but never before the entry that last woke us.

    A pair's position is the newest entry it has read; for a pair that has read nothing yet, its
    group's last-delivered id (only its own reads move that, so asking after the reads is exact).
    """
    positions: dict[str, list[str]] = {}
    ask: dict[str, set[str]] = {}  # stream -> groups whose last-delivered id we need
    for runner in runners:
        for leg, stream in enumerate(runner.streams):
            top = runner.top_ids[leg]
            positions.setdefault(stream, [])
            if top is None:
                ask.setdefault(stream, set()).add(runner.group)
            else:
                positions[stream].append(top)
    if ask:
        pipe = r.pipeline(transaction=False)
        for stream in ask:
            pipe.xinfo_groups(stream)
        for (stream, groups), infos in zip(ask.items(), pipe.execute(raise_on_error=False), strict=True):
            for info in infos if isinstance(infos, list) else []:
                name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
                if name in groups:
                    last = info["last-delivered-id"]
                    positions[stream].append(last.decode() if isinstance(last, bytes) else last)
    cursors: dict[str, str] = {}
    for stream, ids in positions.items():
        if not ids:  # the stream or its group is gone: only new entries can matter
            cursors[stream] = "$"
            continue
        cursor = min(ids, key=parse_id)
        woke = woken_at.get(stream)
        if woke is not None and parse_id(woke) > parse_id(cursor):
            cursor = woke
        cursors[stream] = cursor
    return cursors
