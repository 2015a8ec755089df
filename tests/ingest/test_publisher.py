"""TickPublisher against the real Redis: ordering, backpressure, overflow counting, MINID trimming,
permanent error replies, and retry after connections are cut (through a real TCP proxy)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse

import pytest
import redis
import redis.asyncio as aioredis

from services.ingest.publisher import TickPublisher
from shared.config import CommonSettings
from shared.errors import PairsError
from shared.messages import Tick
from shared.streams import Keys
from shared.timeutil import now_us

from .conftest import stream_ticks

BTC, ETH = "binance-spot.BTCUSDT", "binance-spot.ETHUSDT"


def make_ticks(n: int, instruments: tuple[str, ...] = (BTC, ETH), first_id: int = 1) -> list[Tick]:
    out = []
    for i in range(n):
        ts = 1_723_161_600_000_000 + i * 1000
        out.append(Tick(instrument=instruments[i % len(instruments)], trade_id=first_id + i, price=60000.0 + i / 100,
                        qty=0.001 * (i % 7 + 1), side="buy" if i % 3 else "sell", ts_event_us=ts,
                        ts_exchange_us=ts, ts_ingest_us=now_us(), source="replay"))  # fmt: skip
    return out


@pytest.mark.parametrize("write_mode", ["packed", "redis-py"])
async def test_ticks_arrive_in_order_per_instrument(aredis: aioredis.Redis, redis_client: redis.Redis, keys: Keys,
                                                    write_mode: str) -> None:  # fmt: skip
    ticks = make_ticks(1234)
    async with TickPublisher(aredis, keys, batch_size=100, write_mode=write_mode) as pub:  # type: ignore[arg-type]
        for t in ticks:
            await pub.put(t)
        await pub.flush()
        stats = pub.stats()
    for inst in (BTC, ETH):
        assert stream_ticks(redis_client, keys, inst) == [t for t in ticks if t.instrument == inst]
    assert stats.published == 1234 and stats.batches >= 1234 // 100 and stats.dropped_overflow == 0
    assert stats.published_by_instrument == {BTC: 617, ETH: 617}
    assert stats.latency_samples == 1234 and 0 <= stats.latency_p50_us <= stats.latency_p99_us  # type: ignore[operator]


async def test_put_waits_on_a_full_queue_and_loses_nothing(aredis: aioredis.Redis, redis_client: redis.Redis,
                                                           keys: Keys) -> None:  # fmt: skip
    ticks = make_ticks(60, (BTC,))
    pub = TickPublisher(aredis, keys, queue_size=2, batch_size=1)
    await pub.put(ticks[0])
    await pub.put(ticks[1])
    blocked = asyncio.create_task(pub.put(ticks[2]))
    await asyncio.sleep(0.1)
    assert not blocked.done()  # backpressure: waits while nobody drains
    pub.start()
    await blocked
    for t in ticks[3:]:
        await pub.put(t)
    await pub.close()
    assert stream_ticks(redis_client, keys, BTC) == ticks
    assert pub.stats().dropped_overflow == 0 and pub.stats().published == 60


async def test_offer_on_a_full_queue_returns_false_and_counts(aredis: aioredis.Redis, redis_client: redis.Redis,
                                                              keys: Keys) -> None:  # fmt: skip
    ticks = make_ticks(5, (ETH,))
    pub = TickPublisher(aredis, keys, queue_size=3)
    assert [pub.offer(t) for t in ticks] == [True, True, True, False, False]
    assert pub.stats().dropped_overflow == 2 and pub.queued == 3
    pub.start()
    await pub.close()
    assert stream_ticks(redis_client, keys, ETH) == ticks[:3]
    with pytest.raises(PairsError, match="closed"):
        pub.offer(ticks[4])
    with pytest.raises(PairsError, match="closed"):
        await pub.put(ticks[4])


async def test_minid_trimming_drops_old_nodes_and_keeps_the_retention_window(
    aredis: aioredis.Redis, redis_client: redis.Redis, keys: Keys
) -> None:
    key = keys.ticks(BTC)
    node_size = int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])
    pipe = redis_client.pipeline(transaction=False)
    for i in range(1, 5 * node_size + 1):  # ancient entries (1970): far older than any retention
        pipe.xadd(key, {"data": b"old"}, id=f"{i}-0")
    recent_ms = int(now_us() / 1000) - 10_000  # 10 s ago: inside a 60 s retention
    for i in range(10):
        pipe.xadd(key, {"data": b"recent"}, id=f"{recent_ms}-{i}")
    pipe.execute()
    ticks = make_ticks(20, (BTC,))
    async with TickPublisher(aredis, keys, retention_s=60) as pub:
        for t in ticks:
            await pub.put(t)
    entries = redis_client.xrange(key)
    old = [e for e in entries if e[1][b"data"] == b"old"]
    recent = [e for e in entries if e[1][b"data"] == b"recent"]
    # Redis docs (XADD, "~" trimming): only whole macro nodes are evicted, so fewer than one node of
    # entries older than MINID may survive, and nothing newer than MINID is removed.
    assert len(old) < node_size
    assert len(recent) == 10
    assert stream_ticks.__name__ and [e for e in entries if e[1][b"data"] not in (b"old", b"recent")]
    assert len(entries) - len(old) - len(recent) == 20


async def test_permanent_error_replies_are_counted_and_do_not_block(aredis: aioredis.Redis,
                                                                   redis_client: redis.Redis, keys: Keys) -> None:  # fmt: skip
    bad = "binance-spot.BADUSDT"
    redis_client.set(keys.ticks(bad), b"not a stream")  # XADD on it fails with WRONGTYPE
    ticks = make_ticks(30, (BTC, bad))
    async with TickPublisher(aredis, keys, batch_size=7) as pub:
        for t in ticks:
            await pub.put(t)
        await asyncio.wait_for(pub.flush(), 10)
    assert pub.stats().rejected == 15 and pub.stats().published == 15
    assert stream_ticks(redis_client, keys, BTC) == [t for t in ticks if t.instrument == BTC]


class CuttableProxy:
    """A real TCP proxy in front of Redis whose client connections can be cut on demand."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_cut_connections_are_retried_without_losing_ticks(settings: CommonSettings,
                                                                redis_client: redis.Redis, keys: Keys) -> None:  # fmt: skip
    url = urlparse(settings.redis_dsn)
    proxy = CuttableProxy(url.hostname or "127.0.0.1", url.port or 6379)
    await proxy.start()
    db = int((url.path or "/0").lstrip("/") or 0)
    client = aioredis.Redis(host="127.0.0.1", port=proxy.port, db=db, socket_connect_timeout=2)
    ticks = make_ticks(3000, (BTC, ETH))
    pub = TickPublisher(client, keys, batch_size=50, retry_initial_s=0.01, retry_max_s=0.05)
    try:
        for t in ticks:
            await pub.put(t)
        pub.start()
        for _ in range(2):  # cut twice while batches are still queued
            batches = pub.stats().batches
            while pub.stats().batches == batches:
                await asyncio.sleep(0.001)
            proxy.cut()
        await asyncio.wait_for(pub.flush(), 30)
        await pub.close()
    finally:
        await proxy.stop()
        await client.aclose()
    stats = pub.stats()
    assert stats.redis_errors >= 1 and stats.rejected == 0
    for inst in (BTC, ETH):
        got = stream_ticks(redis_client, keys, inst)
        want = [t for t in ticks if t.instrument == inst]
        # At-least-once: a resent pipeline may duplicate entries, never lose or reorder first sightings.
        assert list(dict.fromkeys(t.trade_id for t in got)) == [t.trade_id for t in want]
