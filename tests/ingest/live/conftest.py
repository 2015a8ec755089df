"""Fixtures for the live-ingest tests: a FakeBinance server, fast settings, and Redis read-back.

Requires Redis on REDIS_URL (real sockets to a local fake exchange; nothing is mocked).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from services.ingest.live.runner import LiveIngest
from services.ingest.live.settings import LiveSettings
from shared.config import data_dir_or_none
from shared.messages import GapEvent, Tick, from_fields
from shared.redis_client import connect_async
from tests.conftest import REDIS_URL
from tests.fakebinance import FakeBinance, Tape, generated_tapes, load_tapes

FAST = {
    "watchdog_silence_s": 1.0,
    "watchdog_interval_s": 0.1,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.2,
    "healthy_after_s": 0.5,
    "gap_grace_s": 0.05,
    "backfill_deadline_s": 5.0,
    "status_interval_s": 0.2,
    "seed_lookback_s": 0.0,
    "open_timeout_s": 3.0,
    "close_timeout_s": 0.5,
    "rest_timeout_s": 3.0,
}


def ws_dir() -> Path | None:
    root = data_dir_or_none()
    return None if root is None else root / "binance" / "ws"


@pytest.fixture
def tapes() -> list[Tape]:
    """Recorded Binance frames when ../shared/data is present, generated Binance-format frames otherwise."""
    return load_tapes(ws_dir(), "sample")


@pytest.fixture(params=["recorded", "generated"])
def any_tapes(request: pytest.FixtureRequest) -> list[Tape]:
    if request.param == "recorded":
        root = request.getfixturevalue("data_dir")
        return load_tapes(root / "binance" / "ws", "sample")
    return generated_tapes(duration_s=12.0)


@pytest.fixture
def fake_factory() -> Iterator[Any]:
    started: list[FakeBinance] = []

    def make(tapes: list[Tape], preload: int = 0, **kwargs: Any) -> FakeBinance:
        fb = FakeBinance(tapes, preload=preload, **kwargs).start()
        started.append(fb)
        return fb

    yield make
    for fb in started:
        fb.stop()


def live_settings(key_prefix: str, fb: FakeBinance, **overrides: Any) -> LiveSettings:
    fields = {**FAST, **fb.live_settings(), **overrides}
    return LiveSettings(REDIS_URL=REDIS_URL, PAIRS_KEY_PREFIX=key_prefix, LOG_JSON=False, **fields)


@pytest.fixture
def rclient() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@contextlib.asynccontextmanager
async def running(live_cfg: LiveSettings) -> AsyncIterator[LiveIngest]:
    client = connect_async(live_cfg)
    ingest = LiveIngest(live_cfg, client)
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    await ingest.started.wait()
    try:
        yield ingest
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await client.aclose()


def read_ticks(client: redis.Redis, live_cfg: LiveSettings, instrument: str) -> list[Tick]:
    entries = client.xrange(live_cfg.keys.ticks(instrument))
    return [from_fields(fields, Tick) for _, fields in entries]  # type: ignore[misc]


def read_gaps(client: redis.Redis, live_cfg: LiveSettings) -> list[GapEvent]:
    return [from_fields(fields, GapEvent) for _, fields in client.xrange(live_cfg.keys.gaps)]  # type: ignore[misc]


async def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def assert_exact(ticks: list[Tick], tape: Tape, first_id: int | None = None, last_id: int | None = None) -> None:
    """``ticks`` are the tape's trades ``first_id..last_id``: every id once, in order, same values.

    Oracle: the server's own payloads (Binance fields ``t``/``a``, ``p``, ``q``, ``T``, ``m``).
    """
    assert ticks, "nothing was published"
    ids = [t.trade_id for t in ticks]
    first = ids[0] if first_id is None else first_id
    last = int(tape.payloads[tape.released - 1][tape.id_field]) if last_id is None else last_id
    assert ids == list(range(first, last + 1)), _describe(ids, first, last)
    for tick in ticks:
        p = tape.payloads[tape.index_of(tick.trade_id)]
        assert tick.price == float(p["p"]) and tick.qty == float(p["q"])
        assert tick.ts_event_us == int(p["T"]) * 1000
        assert tick.side == ("sell" if p["m"] else "buy")


def _describe(ids: list[int], first: int, last: int) -> str:
    seen = set(ids)
    missing = [i for i in range(first, last + 1) if i not in seen]
    dups = len(ids) - len(seen)
    disorder = sum(1 for a, b in zip(ids, ids[1:], strict=False) if b <= a)
    return (f"published {len(ids)} ids {ids[:3]}..{ids[-3:]}; wanted {first}..{last}: "
            f"{len(missing)} missing (first {missing[:5]}), {dups} duplicates, {disorder} out of order")
