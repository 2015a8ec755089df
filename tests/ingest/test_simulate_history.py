"""Simulated feed with history: past ticks go out at once, then event time follows the wall clock."""

from __future__ import annotations

import asyncio
import time

from services.ingest.publisher import TickPublisher
from services.ingest.simulate import simulate_feed
from shared.messages import Tick, from_fields
from shared.redis_client import connect_async
from shared.testing.generator import CointegratedSpec


def test_history_is_published_at_once_then_real_time(settings, redis_client):
    spec = CointegratedSpec(duration_s=60.0, rate_x=5.0, rate_y=5.0)

    async def run() -> float:
        client = connect_async(settings)
        pub = TickPublisher(client, settings.keys)
        pub.start()
        began = time.monotonic()
        await simulate_feed(pub, spec=spec, speed=1.0, history_s=30.0, duration_s=31.5)
        elapsed = time.monotonic() - began
        await pub.close()
        await client.aclose()
        return elapsed

    started_us = time.time_ns() // 1000
    elapsed = asyncio.run(run())
    # 30 s of history at once, then ~1.5 s of real time (not 31.5 s).
    assert 1.0 <= elapsed < 10.0, elapsed
    ticks = [from_fields(f, Tick) for _, f in redis_client.xrange(settings.keys.ticks("sim.BTCUSDT"))]
    assert ticks[0].ts_event_us <= started_us - 28_000_000  # the history reaches ~30 s back
    assert max(t.ts_event_us for t in ticks) <= time.time_ns() // 1000  # never ahead of the wall clock
    assert all(t.source == "simulated" for t in ticks)


def test_a_restarted_simulation_continues_ids_and_time(settings, redis_client):
    """Run `pairs ingest --simulate` twice: trade ids stay contiguous and event time keeps rising."""
    import subprocess
    import sys

    from tests.pipeline.helpers import REPO, worker_env

    cmd = [sys.executable, "-m", "services.cli", "ingest", "--simulate", "--duration", "20", "--speed", "max"]
    for _ in range(2):
        subprocess.run(cmd, cwd=REPO, env=worker_env(settings), check=True, capture_output=True, timeout=120)
    for inst in ("sim.BTCUSDT", "sim.ETHUSDT"):
        ticks = [from_fields(f, Tick) for _, f in redis_client.xrange(settings.keys.ticks(inst))]
        assert [t.trade_id for t in ticks] == list(range(1, len(ticks) + 1))
        assert all(a.ts_event_us < b.ts_event_us for a, b in zip(ticks, ticks[1:], strict=False))
        assert len(ticks) > 2 * 20 * 5  # both runs published (rates of 12-20 trades/s)
