"""Publish an alert event to the ``alerts`` stream at most once, even across crashes and replays.

A Lua script makes "check marker, XADD, set marker" atomic (for a chunk of events per call): a second publish of the same dedupe key
returns the first stream id instead of adding a duplicate entry.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.messages import STREAM_FIELD, AlertEvent, encode
from shared.streams import ALERT_PUBLISHED_TTL_SECONDS, ALERT_STREAM_MAXLEN, Keys

# KEYS[1] the alerts stream, KEYS[1+i] the marker of event i; ARGV: field, maxlen, ttl, then the bodies.
# Returns {added_1, id_1, added_2, id_2, ...}.
_PUBLISH_ONCE = """
local out = {}
for i = 2, #KEYS do
  local seen = redis.call('GET', KEYS[i])
  if seen then
    out[#out + 1] = 0
    out[#out + 1] = seen
  else
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[1], ARGV[i + 2])
    redis.call('SET', KEYS[i], id, 'EX', ARGV[3])
    out[#out + 1] = 1
    out[#out + 1] = id
  end
end
return out
"""
CHUNK = 500  # events per script call: one round trip each, without blocking Redis for long


class AlertPublisher:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = client.register_script(_PUBLISH_ONCE)

    async def publish(self, events: list[AlertEvent]) -> list[tuple[AlertEvent, str, bool]]:
        """Returns (event, stream id, newly added) per event, in input order."""
        out: list[tuple[AlertEvent, str, bool]] = []
        for i in range(0, len(events), CHUNK):
            chunk = events[i : i + CHUNK]
            keys = [self.keys.alerts] + [self.keys.alert_published(e.dedupe_key) for e in chunk]
            args = [STREAM_FIELD, ALERT_STREAM_MAXLEN, ALERT_PUBLISHED_TTL_SECONDS] + [encode(e) for e in chunk]
            flat = await self._script(keys=keys, args=args)
            for j, event in enumerate(chunk):
                added, stream_id = flat[2 * j], flat[2 * j + 1]
                sid = stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)
                out.append((event, sid, bool(added)))
        return out
