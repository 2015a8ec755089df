"""Group-aware trimming: the publisher never trims entries a consumer group has not read or acked."""

from __future__ import annotations

import asyncio

from services.ingest.publisher import TickPublisher
from shared.redis_client import connect_async
from shared.testing.generator import CointegratedSpec, generate_ticks


def test_trim_stops_at_the_oldest_entry_a_group_still_needs(settings, redis_client):
    ticks = [t for t in generate_ticks(CointegratedSpec(duration_s=20, seed=2)) if t.instrument == "sim.BTCUSDT"]
    stream = settings.keys.ticks("sim.BTCUSDT")
    first, second = ticks[: len(ticks) // 2], ticks[len(ticks) // 2 :]

    async def publish(batch, retention_s):
        client = connect_async(settings)
        pub = TickPublisher(client, settings.keys, retention_s=retention_s, batch_size=50, trim_refresh_s=0)
        pub.start()
        for t in batch:
            await pub.put(t)
        await pub.close()
        await client.aclose()

    asyncio.run(publish(first, retention_s=3600))
    redis_client.xgroup_create(stream, "slow-reader", id="0")
    read = redis_client.xreadgroup("slow-reader", "c1", {stream: ">"}, count=100)[0][1]
    redis_client.xack(stream, "slow-reader", *[i for i, _ in read[:60]])  # 40 read but not acked
    asyncio.run(asyncio.sleep(1.1))
    # Retention of 1 s: by time alone every earlier entry could go; the group still needs entry 61 on.
    asyncio.run(publish(second, retention_s=1))
    remaining = redis_client.xrange(stream)
    oldest_needed = read[60][0]
    assert remaining[0][0] <= oldest_needed  # nothing the group still needs was trimmed
    assert len(remaining) >= len(ticks) - 60
    # Without the group, the same publish trims the old entries away (approximately: whole nodes).
    redis_client.xgroup_destroy(stream, "slow-reader")
    asyncio.run(asyncio.sleep(1.1))
    asyncio.run(publish(second[:200], retention_s=1))
    assert redis_client.xlen(stream) < len(ticks)
