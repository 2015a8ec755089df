"""Dropped and silent sockets are detected and recovered with nothing lost, duplicated or reordered."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakebinance import SPOT, Tape
from tests.ingest.live.conftest import assert_exact, live_settings, read_ticks, running, wait_until


def _spot_trade_tapes(tapes: list[Tape]) -> list[Tape]:
    return [t for t in tapes if t.venue == SPOT and t.kind == "trade"][:2]


async def test_dropped_and_silent_connections_recover_without_gap_or_duplicate(
    any_tapes: list[Tape], fake_factory, key_prefix: str, rclient
) -> None:
    trade_tapes = _spot_trade_tapes(any_tapes)
    assert len(trade_tapes) == 2
    fb = fake_factory(trade_tapes)
    cfg = live_settings(key_prefix, fb, instruments=[f"binance-spot.{t.symbol}" for t in trade_tapes])
    async with running(cfg) as ingest:
        await wait_until(lambda: all(s.current for s in ingest.slots), 5, "first connection")
        fb.play(rate_per_s=80)
        await asyncio.sleep(0.6)
        assert fb.drop_connections() == 1  # abrupt cut (1006)
        await asyncio.sleep(0.5)
        fb.silence(True)  # socket kept open, pings answered, no frames
        await asyncio.sleep(cfg.watchdog_silence_s + 0.6)
        fb.silence(False)
        await asyncio.to_thread(fb.wait_finished, 20)
        last_ids = {f"binance-spot.{t.symbol}": t.trade_id(len(t.payloads) - 1) for t in trade_tapes}
        await wait_until(lambda: all(ingest.sequencers[i].last_id == last for i, last in last_ids.items()), 10,
                         "every trade published")
        await ingest.publisher.flush(5)
        slot = ingest.slots[0]
        assert slot.reconnects >= 2, f"drop + watchdog should both reconnect, saw {slot.reconnects}"
        assert "watchdog" in slot.last_error or any(
            "watchdog" in c.close_reason for c in [slot.current] if c), slot.last_error
        stats = {i: s.stats for i, s in ingest.sequencers.items()}
    for tape in trade_tapes:
        ticks = read_ticks(rclient, cfg, f"binance-spot.{tape.symbol}")
        assert_exact(ticks, tape)
        st = stats[f"binance-spot.{tape.symbol}"]
        assert st.published_backfill > 0, "the outages should have been filled from REST"
        assert st.ids_unfilled == 0
    pings = [c for c in fb.clients() if c["pings"]]
    assert all(c["pongs"] == c["pings"] or not c["open"] for c in pings)


@pytest.mark.parametrize("rate", [150])
async def test_pings_are_answered_with_their_payload(tapes: list[Tape], fake_factory, key_prefix: str, rate: int) -> None:
    trade_tapes = _spot_trade_tapes(tapes)[:1]
    fb = fake_factory(trade_tapes, ping_interval_s=0.1, ping_timeout_s=0.5)
    cfg = live_settings(key_prefix, fb, instruments=[f"binance-spot.{trade_tapes[0].symbol}"])
    async with running(cfg) as ingest:
        fb.play(rate_per_s=rate)
        await asyncio.sleep(1.2)
        clients = fb.clients()
        assert ingest.slots[0].reconnects == 0
    assert clients and clients[0]["pings"] >= 5
    assert clients[0]["pongs"] == clients[0]["pings"] or clients[0]["pongs"] == clients[0]["pings"] - 1
