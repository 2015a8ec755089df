"""Startup seeding publishes recent REST history (source "seed") and the live stream joins it exactly."""

from __future__ import annotations

import pytest

from tests.fakebinance import SPOT, USDM, Tape, generated_tapes
from tests.ingest.live.conftest import assert_exact, live_settings, read_ticks, running, wait_until

PRELOAD = 120


def _expected_first(tape: Tape, lookback_s: float) -> int:
    """Oracle: the first trade whose time is within ``lookback_s`` of the newest pre-start trade."""
    clock_ms = int(tape.payloads[PRELOAD - 1]["T"])
    return next(tape.trade_id(i) for i in range(PRELOAD) if int(tape.payloads[i]["T"]) >= clock_ms - lookback_s * 1000)


async def _seed_and_stream(tape: Tape, venue: str, kind: str, lookback_s: float, fake_factory, key_prefix, rclient,
                           play_at_once: bool = False):
    instrument = f"{venue}.{tape.symbol}"
    fb = fake_factory([tape], preload=PRELOAD)
    cfg = live_settings(key_prefix, fb, instruments=[instrument], default_stream_kind=kind,
                        seed_lookback_s=lookback_s)
    async with running(cfg) as ingest:
        seq = ingest.sequencers[instrument]
        if play_at_once:  # live frames arrive while the seed is still loading: they are held, then joined
            await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
            fb.play(rate_per_s=150)
        await wait_until(lambda: seq.last_id is not None and seq.last_id >= tape.trade_id(PRELOAD - 1), 30, "seed")
        if not play_at_once:
            fb.play(rate_per_s=150)
        await wait_until(lambda: seq.last_id == tape.trade_id(len(tape.payloads) - 1), 40, "the last trade")
        await ingest.publisher.flush(5)
        stats = seq.stats
    ticks = read_ticks(rclient, cfg, instrument)
    first = _expected_first(tape, lookback_s)
    assert_exact(ticks, tape, first_id=first)
    seeded = [t.trade_id for t in ticks if t.source == "seed"]
    assert seeded == list(range(first, first + len(seeded))) and seeded[-1] >= tape.trade_id(PRELOAD - 1)
    assert stats.published_seed == len(seeded) and stats.seed_failed == 0
    assert all(t.source in ("live", "backfill") for t in ticks[len(seeded):])
    return ticks


@pytest.mark.parametrize(("lookback_s", "play_at_once"), [(3600.0, False), (1.0, False), (3600.0, True)])
async def test_trade_stream_seed_joins_live_without_gap_or_duplicate(lookback_s, play_at_once, tapes, fake_factory,
                                                                     key_prefix, rclient) -> None:
    tape = next(t for t in tapes if t.venue == SPOT and t.kind == "trade")
    await _seed_and_stream(tape, SPOT, "trade", lookback_s, fake_factory, key_prefix, rclient, play_at_once)


async def test_aggtrade_seed_by_time_window_joins_live(fake_factory, key_prefix, rclient) -> None:
    tape = next(t for t in generated_tapes(duration_s=15.0, kinds=("aggTrade",), venues=(USDM,))
                if t.symbol == "BTCUSDT")
    await _seed_and_stream(tape, USDM, "aggTrade", 3.0, fake_factory, key_prefix, rclient)
