"""A full publisher queue or an overflowing hold buffer never loses a tick; ids REST lacks become GapEvents."""

from __future__ import annotations

from tests.fakebinance import SPOT, Tape
from tests.ingest.live.conftest import assert_exact, live_settings, read_gaps, read_ticks, running, wait_until


def _spot_tape(tapes: list[Tape]) -> Tape:
    return next(t for t in tapes if t.venue == SPOT and t.kind == "trade")


async def _complete(ingest, tape: Tape, instrument: str) -> None:
    last = tape.trade_id(len(tape.payloads) - 1)
    await wait_until(lambda: ingest.sequencers[instrument].last_id == last, 30, "the last trade id")
    await ingest.publisher.flush(10)


async def test_full_queue_and_small_hold_buffer_lose_nothing(tapes, fake_factory, key_prefix, rclient) -> None:
    tape = _spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    # A 3-tick publisher queue at full speed: offers fail (counted), ticks are held; a 4-tick hold
    # buffer then overflows and the oldest held ids are fetched back from REST.
    cfg = live_settings(key_prefix, fb, instruments=[instrument], queue_size=3, batch_size=2, held_ticks_max=4)
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=None)
        await _complete(ingest, tape, instrument)
        stats = ingest.sequencers[instrument].stats
        pub = ingest.publisher.stats()
    assert pub.dropped_overflow > 0 and stats.queue_full == pub.dropped_overflow
    assert stats.held_overflow > 0 and stats.published_backfill > 0
    assert stats.ids_unfilled == 0
    assert_exact(read_ticks(rclient, cfg, instrument), tape)


async def test_ids_missing_from_rest_become_a_gap_event(tapes, fake_factory, key_prefix, rclient) -> None:
    tape = _spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    skipped = (tape.trade_id(50), tape.trade_id(69))
    lost = (tape.trade_id(55), tape.trade_id(59))  # REST answers the range without these
    fb.skip_ids(SPOT, tape.stream, *skipped)
    fb.hide_from_rest(SPOT, tape.stream, *lost)
    cfg = live_settings(key_prefix, fb, instruments=[instrument])
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=150)
        await _complete(ingest, tape, instrument)
        rest = ingest.spot_rest.stats
        weight_seen_by_server = fb.weight_used()
    assert [(g.first_missing, g.last_missing, g.reason) for g in read_gaps(rclient, cfg)] == [
        (lost[0], lost[1], "ids not returned by REST")]
    ids = [t.trade_id for t in read_ticks(rclient, cfg, instrument)]
    last = tape.trade_id(len(tape.payloads) - 1)
    assert ids == [i for i in range(ids[0], last + 1) if not lost[0] <= i <= lost[1]]
    assert rest.used_weight_1m == weight_seen_by_server > 0  # X-MBX-USED-WEIGHT-1M is tracked


async def test_restart_resumes_after_the_last_published_id(tapes, fake_factory, key_prefix, rclient) -> None:
    tape = _spot_tape(tapes)
    instrument = f"binance-spot.{tape.symbol}"
    fb = fake_factory([tape])
    cfg = live_settings(key_prefix, fb, instruments=[instrument], seed_lookback_s=3600.0)
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=150)
        await wait_until(lambda: (ingest.sequencers[instrument].last_id or 0) >= tape.trade_id(60), 10, "some ticks")
    # Down while trading goes on; the restart must fetch exactly what it missed, not re-seed.
    await wait_until(lambda: len(fb.released(SPOT, tape.stream)) > 150, 10, "trades while down")
    async with running(cfg) as ingest:
        await _complete(ingest, tape, instrument)
        stats = ingest.sequencers[instrument].stats
    assert stats.published_seed == 0 and stats.published_backfill > 0
    assert_exact(read_ticks(rclient, cfg, instrument), tape, first_id=tape.first_id)
