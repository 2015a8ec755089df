"""Id gaps on the socket are filled from REST in order; REST throttling is obeyed; lost ids are reported."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.fakebinance import SPOT, Tape
from tests.ingest.live.conftest import assert_exact, live_settings, read_gaps, read_ticks, running, wait_until


def _one_spot_tape(tapes: list[Tape]) -> Tape:
    return next(t for t in tapes if t.venue == SPOT and t.kind == "trade")


async def _run_until_complete(ingest, tape: Tape, instrument: str) -> None:
    last = tape.trade_id(len(tape.payloads) - 1)
    await wait_until(lambda: ingest.sequencers[instrument].last_id == last, 20, "the last trade id")
    await ingest.publisher.flush(5)


async def test_skipped_ids_are_backfilled_before_later_ticks(tapes: list[Tape], fake_factory, key_prefix: str,
                                                             rclient) -> None:
    tape = _one_spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    skipped = (tape.trade_id(60), tape.trade_id(84))
    fb.skip_ids(SPOT, tape.stream, *skipped)
    cfg = live_settings(key_prefix, fb, instruments=[instrument])
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=150)
        await _run_until_complete(ingest, tape, instrument)
        stats = ingest.sequencers[instrument].stats
    ticks = read_ticks(rclient, cfg, instrument)
    assert_exact(ticks, tape)  # stream order == id order, so the backfill landed before later live ticks
    sources = {t.trade_id: t.source for t in ticks}
    assert all(sources[i] == "backfill" for i in range(skipped[0], skipped[1] + 1))
    assert sources[skipped[1] + 1] == "live"
    assert stats.gaps_detected == 1 and stats.published_backfill == skipped[1] - skipped[0] + 1
    assert [c.params.get("fromId") for c in fb.rest_calls() if c.path.endswith("historicalTrades")] == [str(skipped[0])]


@pytest.mark.parametrize("status", [429, 418])
async def test_no_request_before_retry_after(status: int, tapes: list[Tape], fake_factory, key_prefix: str,
                                             rclient) -> None:
    tape = _one_spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    fb.skip_ids(SPOT, tape.stream, tape.trade_id(40), tape.trade_id(49))
    fb.throttle(status, retry_after_s=1.0, count=2)  # the first two REST calls are refused
    cfg = live_settings(key_prefix, fb, instruments=[instrument])
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=150)
        await _run_until_complete(ingest, tape, instrument)
        rest = ingest.spot_rest.stats
    calls = fb.rest_calls()
    assert [c.status for c in calls[:3]] == [status, status, 200]
    for before, after in zip(calls, calls[1:], strict=False):
        if before.status == status:
            assert after.t - before.t >= 1.0 - 0.01, f"request {after.t - before.t:.3f} s after a {status}"
    assert (rest.throttled_429, rest.banned_418) == ((2, 0) if status == 429 else (0, 2))
    assert_exact(read_ticks(rclient, cfg, instrument), tape)


async def test_unfillable_gap_becomes_a_gap_event(tapes: list[Tape], fake_factory, key_prefix: str, rclient) -> None:
    tape = _one_spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    first, last = tape.trade_id(30), tape.trade_id(39)
    fb.skip_ids(SPOT, tape.stream, first, last)
    fb.throttle(429, retry_after_s=30.0, count=1)  # banned past the backfill deadline
    cfg = live_settings(key_prefix, fb, instruments=[instrument], backfill_deadline_s=1.0)
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=150)
        await _run_until_complete(ingest, tape, instrument)
        stats = ingest.sequencers[instrument].stats
    gaps = read_gaps(rclient, cfg)
    assert [(g.instrument, g.first_missing, g.last_missing) for g in gaps] == [(instrument, first, last)]
    assert stats.ids_unfilled == last - first + 1 and stats.gap_events == 1
    ids = [t.trade_id for t in read_ticks(rclient, cfg, instrument)]
    expected = [i for i in range(ids[0], tape.trade_id(len(tape.payloads) - 1) + 1) if not first <= i <= last]
    assert ids == expected
    assert len(fb.rest_calls()) == 1  # nothing was sent while the Retry-After was running


async def test_malformed_frames_are_counted_and_logged_never_fatal(tapes: list[Tape], fake_factory, key_prefix: str,
                                                                   rclient, caplog: pytest.LogCaptureFixture) -> None:
    tape = _one_spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    cfg = live_settings(key_prefix, fb, instruments=[instrument])
    garbage = [
        "not json at all",
        orjson.dumps({"stream": tape.stream, "data": {"e": "trade", "t": "oops"}}).decode(),
        orjson.dumps({"stream": tape.stream, "data": {"e": "trade", "E": 1, "s": tape.symbol, "t": -5, "p": "1",
                                                      "q": "1", "T": 1, "m": True}}).decode(),
        "[1, 2, 3]",
        '{"unexpected": true}',
    ]
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=150)
        await asyncio.sleep(0.5)
        for text in garbage:
            assert fb.inject(text) == 1
        await _run_until_complete(ingest, tape, instrument)
        conn = ingest.slots[0].current
        assert conn is not None and conn.stats.malformed == len(garbage)
        assert ingest.slots[0].reconnects == 0
    assert any("malformed frame" in r.getMessage() for r in caplog.records)
    assert_exact(read_ticks(rclient, cfg, instrument), tape)
