"""Planned rotation and serverShutdown hand over without loss; USD-M streams are routed by category."""

from __future__ import annotations

import asyncio

from services.ingest.live.health import problems
from services.ingest.live.plan import plan_connections, subscriptions
from services.ingest.live.settings import LiveSettings
from shared.timeutil import now_us
from tests.fakebinance import SPOT, USDM, Tape, generated_tapes
from tests.ingest.live.conftest import assert_exact, live_settings, read_ticks, running, wait_until


def _spot_trades(tapes: list[Tape]) -> list[Tape]:
    return [t for t in tapes if t.venue == SPOT and t.kind == "trade"][:2]


async def _finish(ingest, tapes: list[Tape], venue: str) -> None:
    last = {f"{venue}.{t.symbol}": t.trade_id(len(t.payloads) - 1) for t in tapes}
    await wait_until(lambda: all(ingest.sequencers[i].last_id == v for i, v in last.items()), 20, "all trades")
    await ingest.publisher.flush(5)


async def test_planned_rotation_hands_over_without_gap_or_duplicate(tapes, fake_factory, key_prefix, rclient) -> None:
    trade_tapes = _spot_trades(tapes)
    fb = fake_factory(trade_tapes)
    cfg = live_settings(key_prefix, fb, instruments=[f"binance-spot.{t.symbol}" for t in trade_tapes],
                        rotate_after_s=0.7, rotate_handover_timeout_s=2.0)
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=120)
        await _finish(ingest, trade_tapes, SPOT)
        slot = ingest.slots[0]
        assert slot.rotations >= 2 and slot.reconnects == 0 and slot.failed_rotations == 0
        dups = sum(s.stats.duplicates for s in ingest.sequencers.values())
    assert dups > 0, "the overlap of old and new sockets should have delivered some ids twice"
    for tape in trade_tapes:
        assert_exact(read_ticks(rclient, cfg, f"binance-spot.{tape.symbol}"), tape)
    assert sum(1 for c in fb.clients() if c["open"]) == 0


async def test_server_shutdown_notice_replaces_the_socket_first(tapes, fake_factory, key_prefix, rclient) -> None:
    trade_tapes = _spot_trades(tapes)
    fb = fake_factory(trade_tapes)
    # The watchdog is not under test here: a tape that ends before the other (the generated ones
    # without ../shared/data have 12 vs 20 trades/s) must not count as a silent stream.
    cfg = live_settings(key_prefix, fb, instruments=[f"binance-spot.{t.symbol}" for t in trade_tapes],
                        watchdog_silence_s=60.0)  # fmt: skip
    async with running(cfg) as ingest:
        await wait_until(lambda: ingest.slots[0].current is not None, 5, "connection")
        fb.play(rate_per_s=120)
        await asyncio.sleep(0.7)
        old = ingest.slots[0].current
        assert fb.server_shutdown(close_after_s=1.0) == 1
        await wait_until(lambda: ingest.slots[0].current is not old, 5, "the replacement socket")
        await _finish(ingest, trade_tapes, SPOT)
        slot = ingest.slots[0]
        assert slot.rotations == 1 and slot.reconnects == 0
        assert old is not None and old.stats.shutdown_notices == 1 and "serverShutdown" in old.close_reason
    for tape in trade_tapes:
        assert_exact(read_ticks(rclient, cfg, f"binance-spot.{tape.symbol}"), tape)


def test_usdm_streams_are_planned_by_route_and_never_mixed() -> None:
    cfg = LiveSettings(instruments=["binance-usdm.BTCUSDT", "binance-usdm.ETHUSDT", "binance-spot.BTCUSDT"],
                       stream_kinds={"binance-usdm.BTCUSDT": "aggTrade"}, status_streams=["bookTicker", "kline_1m"],
                       max_streams_per_connection=2)
    plans = plan_connections(subscriptions(cfg), cfg)
    for plan in plans:
        assert len(plan.streams) <= 2
        kinds = {s.kind for s in plan.streams}
        if plan.venue == USDM and plan.route == "/market":
            assert kinds <= {"aggTrade", "kline_1m"}
        elif plan.venue == USDM:
            assert plan.route == "/public" and kinds <= {"trade", "bookTicker"}
        else:
            assert plan.route == "" and plan.url.startswith(cfg.spot_ws_base_url + "/stream?streams=")
    market = [s.name for p in plans if p.route == "/market" for s in p.streams]
    public = [s.name for p in plans if p.route == "/public" for s in p.streams]
    assert sorted(market) == ["btcusdt@aggTrade", "btcusdt@kline_1m", "ethusdt@kline_1m"]
    assert sorted(public) == ["btcusdt@bookTicker", "ethusdt@bookTicker", "ethusdt@trade"]
    assert all(p.url.startswith(f"{cfg.usdm_ws_base_url}{p.route}/stream?streams=") for p in plans if p.venue == USDM)


def _routing_tapes(tapes: list[Tape]) -> list[Tape]:
    books = [t for t in tapes if t.venue == USDM and t.kind == "bookTicker" and t.symbol == "BTCUSDT"]
    aggs = [t for t in generated_tapes(duration_s=12.0, kinds=("aggTrade",), venues=(USDM,)) if t.symbol == "BTCUSDT"]
    if not books:  # no recorded data: quotes generated from the trades
        books = [Tape(USDM, "BTCUSDT", "bookTicker",
                      [{"e": "bookTicker", "u": i, "s": "BTCUSDT", "b": p["p"], "B": "1", "a": p["p"], "A": "1",
                        "T": p["T"], "E": p["E"]} for i, p in enumerate(aggs[0].payloads)])]
    return books + aggs


async def test_usdm_aggtrade_on_market_and_bookticker_on_public_deliver(tapes, fake_factory, key_prefix,
                                                                         rclient) -> None:
    route_tapes = _routing_tapes(tapes)
    agg = next(t for t in route_tapes if t.kind == "aggTrade")
    fb = fake_factory(route_tapes)
    cfg = live_settings(key_prefix, fb, instruments=["binance-usdm.BTCUSDT"], default_stream_kind="aggTrade",
                        status_streams=["bookTicker"])
    async with running(cfg) as ingest:
        await wait_until(lambda: all(s.current for s in ingest.slots), 5, "connections")
        fb.play(rate_per_s=80)
        await asyncio.sleep(2.0)
        status = ingest.status()
        routes = sorted((c["route"], tuple(c["streams"])) for c in fb.clients() if c["open"])
        assert routes == [("/market", ("btcusdt@aggTrade",)), ("/public", ("btcusdt@bookTicker",))]
        assert problems(status, now_us(), cfg.watchdog_silence_s) == []
        assert all(s.reconnects == 0 for s in ingest.slots)
        fb.pause()
    ids = [t.trade_id for t in read_ticks(rclient, cfg, "binance-usdm.BTCUSDT")]
    assert ids and ids == list(range(ids[0], ids[0] + len(ids))) and ids[0] == agg.first_id


async def test_wrong_route_acks_but_is_silent_and_the_watchdog_catches_it(tapes, fake_factory, key_prefix) -> None:
    fb = fake_factory(_routing_tapes(tapes))
    # Legacy unrouted path: Binance accepts the socket but never sends market streams on it.
    cfg = live_settings(key_prefix, fb, instruments=["binance-usdm.BTCUSDT"], default_stream_kind="aggTrade",
                        usdm_market_route="", seed_lookback_s=0.0)
    async with running(cfg) as ingest:
        fb.play(rate_per_s=80)
        await wait_until(lambda: ingest.slots[0].reconnects >= 1, 5, "the watchdog to rebuild the socket")
        slot = ingest.slots[0]
        assert "watchdog: stream btcusdt@aggTrade silent" in slot.last_error
        status = ingest.status()
        assert problems(status, now_us() + int(2e6), 1.0), "a silent stream must make the feed unhealthy"
        assert all(c["route"] == "" for c in fb.clients())
    assert ingest.sequencers["binance-usdm.BTCUSDT"].stats.published_live == 0
