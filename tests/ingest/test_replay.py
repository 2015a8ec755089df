"""Replay through the real publisher: the recorded spot trade files end up in their streams exactly
(pandas reading the same files is the oracle), merge order, pacing, malformed lines, stop."""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path

import orjson
import pandas as pd
import pytest
import redis
import redis.asyncio as aioredis

from services.ingest.heartbeat import publish_feed_status
from services.ingest.publisher import TickPublisher
from services.ingest.replay import ReplaySummary, TickMerger, parse_speed, replay_files
from services.ingest.sources import open_tick_file
from shared.errors import InvalidInput
from shared.streams import Keys

from .conftest import stream_ticks, write_lines

SPOT_FILES = ("spot_BTCUSDT_trades_20240808T235415Z_20240809T000505Z.csv.gz",
              "spot_ETHUSDT_trades_20240808T235415Z_20240809T000505Z.csv.gz")  # fmt: skip


def _dump_lines(trade_ids: range, t0_ms: int, step_ms: int, price: str = "100.5") -> list[str]:
    return [f"{i},{price},0.25000000,25.125,{t0_ms + k * step_ms},{'True' if i % 2 else 'False'},True"
            for k, i in enumerate(trade_ids)]  # fmt: skip


@pytest.mark.real_data
@pytest.mark.slow
async def test_real_spot_trades_replayed_exactly(data_dir: Path, aredis: aioredis.Redis, redis_client: redis.Redis,
                                                 keys: Keys) -> None:  # fmt: skip
    paths = [data_dir / "binance" / "trades" / name for name in SPOT_FILES]
    node_size = int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])
    btc_key = keys.ticks("binance-spot.BTCUSDT")
    for i in range(1, 3 * node_size + 1):  # ancient entries: the trim policy must evict them
        redis_client.xadd(btc_key, {"data": b"ancient"}, id=f"{i}-0")
    statuses: list[dict] = []

    async def on_status(status: dict) -> None:
        statuses.append(status)
        await publish_feed_status(aredis, keys, "replay", status, ttl_s=30)

    async with TickPublisher(aredis, keys, retention_s=3600) as pub:
        summary = await replay_files([open_tick_file(p) for p in paths], pub, progress=False, on_status=on_status)
    assert pub.stats().published == summary.read

    for path in paths:
        frame = pd.read_csv(path, dtype={"p": str, "q": str})
        instrument = f"binance-spot.{frame['s'].iloc[0]}"
        got = stream_ticks(redis_client, keys, instrument)
        assert len(got) == len(frame) == summary.published_by_instrument[instrument]
        assert [t.trade_id for t in got] == frame["t"].tolist()  # the file's order, no duplicates
        assert len({t.trade_id for t in got}) == len(got)
        assert [t.price for t in got] == [float(p) for p in frame["p"]]
        assert [t.qty for t in got] == [float(q) for q in frame["q"]]
        assert [t.side for t in got] == ["sell" if m else "buy" for m in frame["m"]]
        assert [t.ts_event_us for t in got] == (frame["T"] * 1000).tolist()
        assert [t.ts_exchange_us for t in got] == (frame["E"] * 1000).tolist()
        assert {t.source for t in got} == {"replay"}
    # Redis "~" trimming evicts whole nodes only: fewer than one node of ancient entries may remain.
    assert sum(1 for _, f in redis_client.xrange(btc_key) if f[b"data"] == b"ancient") < node_size
    assert summary.malformed == 0 and summary.skipped == 2  # the two header rows
    status = orjson.loads(redis_client.get(keys.feed_status("replay")))
    assert status["mode"] == "replay" and status["state"] == "finished" and status["files"] == list(SPOT_FILES)
    assert status["read"] == summary.read and statuses[0]["state"] == "running"
    assert 0 < redis_client.ttl(keys.feed_status("replay")) <= 30


def test_merge_is_event_time_ordered_with_deterministic_ties(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "BTCUSDT-trades-2024-08-09.csv", _dump_lines(range(1, 11), 1_723_161_600_000, 100))
    b = write_lines(tmp_path / "ETHUSDT-trades-2024-08-09.csv", _dump_lines(range(500, 520), 1_723_161_600_000, 50))
    orders = []
    for files in ((a, b), (b, a)):
        merged = list(TickMerger([open_tick_file(p, venue="binance-spot") for p in files], ReplaySummary([], "max")))
        keys_ = [(t.ts_event_us, t.instrument, t.trade_id) for t in merged]
        assert keys_ == sorted(keys_) and len(merged) == 30
        orders.append([(t.instrument, t.trade_id) for t in merged])
    assert orders[0] == orders[1]  # equal times: ordered by instrument then id, whatever the file order


async def test_speed_10x_paces_event_time(tmp_path: Path, aredis: aioredis.Redis, redis_client: redis.Redis,
                                          keys: Keys) -> None:  # fmt: skip
    # 21 trades 100 ms apart: a 2 s event span; at 10x it must take at least ~0.2 s of wall time.
    path = write_lines(tmp_path / "BTCUSDT-trades-2024-08-09.csv", _dump_lines(range(1, 22), 1_723_161_600_000, 100))
    async with TickPublisher(aredis, keys) as pub:
        started = time.monotonic()
        summary = await replay_files([open_tick_file(path, venue="binance-spot")], pub, speed=10, progress=False)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.15, elapsed
    assert summary.speed == "10x" and summary.read == 21
    assert [t.trade_id for t in stream_ticks(redis_client, keys, "binance-spot.BTCUSDT")] == list(range(1, 22))


async def test_malformed_lines_are_reported_and_never_published(tmp_path: Path, aredis: aioredis.Redis,
                                                                redis_client: redis.Redis, keys: Keys) -> None:  # fmt: skip
    lines = _dump_lines(range(1, 6), 1_723_161_600_000, 10)
    lines[1] = "2,not-a-price,0.25,1,1723161600010,True,True"
    lines[3] = "4,100.5"
    good = write_lines(tmp_path / "BTCUSDT-trades-2024-08-09.csv", lines)
    broken = tmp_path / "ETHUSDT-trades-2024-08-09.csv.gz"
    broken.write_bytes(gzip.compress("\n".join(_dump_lines(range(1, 2000), 1_723_161_600_000, 10)).encode())[:4000])
    async with TickPublisher(aredis, keys) as pub:
        files = [open_tick_file(p, venue="binance-spot") for p in (good, broken)]
        summary = await replay_files(files, pub, progress=False, max_examples=2)
    assert [t.trade_id for t in stream_ticks(redis_client, keys, "binance-spot.BTCUSDT")] == [1, 3, 5]
    eth = stream_ticks(redis_client, keys, "binance-spot.ETHUSDT")
    assert eth and [t.trade_id for t in eth] == list(range(1, len(eth) + 1))  # everything before the cut
    assert summary.malformed == 3  # two bad lines + the truncated archive
    assert [(m.file, m.line_no) for m in summary.malformed_examples] == [(good.name, 2), (good.name, 4)]
    assert "not-a-price" in summary.malformed_examples[0].error


async def test_stop_event_ends_the_replay_and_flushes(tmp_path: Path, aredis: aioredis.Redis,
                                                      redis_client: redis.Redis, keys: Keys) -> None:  # fmt: skip
    path = write_lines(tmp_path / "BTCUSDT-trades-2024-08-09.csv", _dump_lines(range(1, 401), 1_723_161_600_000, 10))
    stop = asyncio.Event()
    async with TickPublisher(aredis, keys) as pub:
        task = asyncio.create_task(replay_files([open_tick_file(path, venue="binance-spot")], pub, speed=1,
                                                progress=False, stop=stop))  # fmt: skip
        await asyncio.sleep(0.3)  # ~30 ticks at real time
        stop.set()
        summary = await asyncio.wait_for(task, 5)
    assert summary.interrupted and 0 < summary.read < 400
    got = stream_ticks(redis_client, keys, "binance-spot.BTCUSDT")
    assert [t.trade_id for t in got] == list(range(1, summary.read + 1))


@pytest.mark.parametrize(("text", "factor"), [("max", None), ("MAX", None), ("1", 1.0), ("10x", 10.0), ("0.5", 0.5)])
def test_parse_speed(text: str, factor: float | None) -> None:
    assert parse_speed(text) == factor


@pytest.mark.parametrize("text", ["0", "-2", "fast-ish", "inf x", "nan"])
def test_parse_speed_rejects(text: str) -> None:
    with pytest.raises(InvalidInput, match="must be 'max' or a positive factor"):
        parse_speed(text)
