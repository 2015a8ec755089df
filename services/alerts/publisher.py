"""Publish an alert event to the ``alerts`` stream at most once, even across crashes and replays.

A Lua script makes "check marker, XADD, set marker" atomic: a second publish of the same dedupe key
returns the first stream id instead of adding a duplicate entry.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.messages import STREAM_FIELD, AlertEvent, encode
from shared.streams import ALERT_PUBLISHED_TTL_SECONDS, ALERT_STREAM_MAXLEN, Keys

_PUBLISH_ONCE = """
local seen = redis.call('GET', KEYS[2])
if seen then return {0, seen} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], id, 'EX', ARGV[4])
return {1, id}
"""


class AlertPublisher:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = client.register_script(_PUBLISH_ONCE)
        self._client = client

    async def publish(self, events: list[AlertEvent]) -> list[tuple[AlertEvent, str, bool]]:
        """Returns (event, stream id, newly added) per event, in one pipeline round trip."""
        if not events:
            return []
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            await self._script(
                keys=[self.keys.alerts, self.keys.alert_published(event.dedupe_key)],
                args=[STREAM_FIELD, encode(event), ALERT_STREAM_MAXLEN, ALERT_PUBLISHED_TTL_SECONDS],
                client=pipe,
            )
        results = await pipe.execute()
        out = []
        for event, (added, stream_id) in zip(events, results, strict=True):
            sid = stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)
            out.append((event, sid, bool(added)))
        return out
