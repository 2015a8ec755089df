"""The simulated feed publishes exactly the generator's ticks (shared.testing.generator is the
oracle), labelled "simulated", with trade ids and event time continuing across loops."""

from __future__ import annotations

import time

import msgspec
import orjson
import redis
import redis.asyncio as aioredis

from services.ingest.heartbeat import publish_feed_status
from services.ingest.publisher import TickPublisher
from services.ingest.simulate import loop_spec, simulate_feed
from shared.streams import Keys
from shared.testing.generator import CointegratedSpec, generate_ticks

from .conftest import stream_ticks

SPEC = CointegratedSpec(duration_s=20.0, rate_x=5.0, rate_y=3.0, seed=11)
START_US = 1_800_000_000_000_000


def _strip_ingest(ticks: list) -> list:
    return [msgspec.structs.replace(t, ts_ingest_us=0) for t in ticks]


async def test_simulated_feed_matches_the_generator_across_loops(aredis: aioredis.Redis, redis_client: redis.Redis,
                                                                 keys: Keys) -> None:  # fmt: skip
    async def on_status(status: dict) -> None:
        await publish_feed_status(aredis, keys, "simulated", status, ttl_s=30)

    async with TickPublisher(aredis, keys) as pub:
        summary = await simulate_feed(pub, spec=SPEC, speed=None, duration_s=50.0, start_us=START_US,
                                      on_status=on_status)  # fmt: skip
    assert summary.loops == 3  # 20 s + 20 s + the first 10 s of a third loop

    # Oracle: the generator's own output for each loop, trade ids offset by the previous loops' last id.
    end_us = START_US + 50_000_000
    expected: dict[str, list] = {SPEC.y_instrument: [], SPEC.x_instrument: []}
    x0 = SPEC.x0
    for loop in range(3):
        offsets = {inst: (ticks[-1].trade_id if ticks else 0) for inst, ticks in expected.items()}
        for tick in generate_ticks(loop_spec(SPEC, loop, START_US, x0)):
            if tick.ts_event_us < end_us:
                expected[tick.instrument].append(
                    msgspec.structs.replace(tick, trade_id=tick.trade_id + offsets[tick.instrument])
                )
        x0 = expected[SPEC.x_instrument][-1].price
    for inst, want in expected.items():
        got = stream_ticks(redis_client, keys, inst)
        assert _strip_ingest(got) == _strip_ingest(want)
        assert [t.trade_id for t in got] == list(range(1, len(got) + 1))  # gap-free across loops
        assert {t.source for t in got} == {"simulated"}
        assert all(START_US <= t.ts_event_us < START_US + 50_000_000 for t in got)
        assert summary.published_by_instrument[inst] == len(got)
    status = orjson.loads(redis_client.get(keys.feed_status("simulated")))
    assert (status["feed"], status["mode"], status["state"]) == ("simulated", "simulated", "finished")


async def test_real_time_speed_is_paced(aredis: aioredis.Redis, redis_client: redis.Redis, keys: Keys) -> None:
    fast = CointegratedSpec(duration_s=5.0, rate_x=40.0, rate_y=40.0, seed=3)
    async with TickPublisher(aredis, keys) as pub:
        started = time.monotonic()
        summary = await simulate_feed(pub, spec=fast, speed=1.0, duration_s=0.5)
        elapsed = time.monotonic() - started
    span_s = (summary.last_event_us - summary.first_event_us) / 1e6  # type: ignore[operator]
    assert elapsed >= span_s * 0.9 and span_s > 0.3
    assert sum(summary.published_by_instrument.values()) == sum(
        len(stream_ticks(redis_client, keys, i)) for i in (fast.x_instrument, fast.y_instrument)
    )
