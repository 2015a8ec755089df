"""Test-kit helper: put ticks on their streams synchronously (tests that don't exercise ingest)."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from shared.messages import Tick, to_fields
from shared.streams import Keys


def publish_ticks(r: redis.Redis, keys: Keys, ticks: Iterable[Tick], batch: int = 1000) -> int:
    pipe = r.pipeline(transaction=False)
    n = 0
    for tick in ticks:
        pipe.xadd(keys.ticks(tick.instrument), to_fields(tick))
        n += 1
        if n % batch == 0:
            pipe.execute()
    pipe.execute()
    return n
