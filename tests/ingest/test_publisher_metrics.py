"""The publisher's Prometheus counters agree with what reached Redis."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from services.ingest.publisher import TickPublisher
from shared.observability import ServiceMetrics
from shared.redis_client import connect_async
from shared.testing.generator import CointegratedSpec, generate_ticks


def test_ticks_out_and_latency_are_counted(settings, redis_client):
    ticks = generate_ticks(CointegratedSpec(duration_s=15, seed=9))
    metrics = ServiceMetrics.create()

    async def publish():
        client = connect_async(settings)
        pub = TickPublisher(client, settings.keys, batch_size=64, metrics=metrics)
        pub.start()
        for t in ticks:
            await pub.put(t)
        await pub.close()
        await client.aclose()

    asyncio.run(publish())
    for inst in ("sim.BTCUSDT", "sim.ETHUSDT"):
        in_redis = redis_client.xlen(settings.keys.ticks(inst))
        assert metrics.ticks_out.labels(inst)._value.get() == in_redis == sum(t.instrument == inst for t in ticks)
    text = generate_latest(metrics.registry).decode()
    assert "pairs_publish_latency_seconds_count" in text
    batches = -(-len(ticks) // 64)
    count = float(text.split("pairs_publish_latency_seconds_count ")[1].split()[0])
    assert batches <= count <= len(ticks)  # one sample per pipeline batch
