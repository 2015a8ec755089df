"""Merge grace: none for legs on one venue (one ingest connection keeps them in trade-time order),
``idle_grace_s`` for legs on two venues."""

from __future__ import annotations

import time

import psycopg
import pytest

from services.analytics.merge import TwoLegMerger, X, Y
from services.analytics.runner import PairRunner, merge_grace_s
from shared.instruments import Pair
from shared.messages import Tick
from shared.testing.streams import publish_ticks
from tests.pipeline.helpers import analytics_settings

T0 = 1_723_161_600_000_000
SAME_VENUE = Pair.parse("binance-spot.ETHUSDT~binance-spot.BTCUSDT")
TWO_VENUES = Pair.parse("binance-spot.ETHUSDT~binance-usdm.BTCUSDT")


def tick(instrument: str, trade_id: int, ts_us: int, price: float = 100.0) -> Tick:
    return Tick(instrument=instrument, trade_id=trade_id, price=price, qty=1.0, side="buy", ts_event_us=ts_us,
                ts_exchange_us=ts_us, ts_ingest_us=ts_us, source="simulated")  # fmt: skip


def test_grace_defaults_by_venue(settings):
    cfg = analytics_settings(settings)
    assert (cfg.same_venue_grace_s, cfg.idle_grace_s) == (0.0, 2.0)
    assert merge_grace_s(SAME_VENUE, cfg) == 0.0
    assert merge_grace_s(Pair.parse("sim.AA~sim.BB"), cfg) == 0.0
    assert merge_grace_s(TWO_VENUES, cfg) == 2.0
    assert merge_grace_s(Pair.parse("binance-usdm.BTCUSDT~binance-spot.BTCUSDT"), cfg) == 2.0


def test_grace_settings_are_used_per_venue(settings):
    cfg = analytics_settings(settings, same_venue_grace_s=0.25, idle_grace_s=3.5)
    assert merge_grace_s(SAME_VENUE, cfg) == 0.25
    assert merge_grace_s(TWO_VENUES, cfg) == 3.5


def test_zero_grace_releases_a_queued_tick_as_soon_as_the_other_leg_is_drained():
    merger = TwoLegMerger(idle_grace_us=0)
    merger.push(Y, "1-0", tick("sim.AA", 1, T0 + 500))
    assert list(merger.release((False, False), clock_us=T0 + 500)) == []  # x may still have an earlier tick
    assert merger.pending() == 1
    released = list(merger.release((False, True), clock_us=T0 + 500))
    assert [(leg, i) for leg, i, _ in released] == [(Y, "1-0")]
    assert merger.pending() == 0


def test_two_second_grace_holds_a_queued_tick_until_the_clock_passes_it():
    merger = TwoLegMerger(idle_grace_us=2_000_000)
    merger.push(X, "5-0", tick("sim.BB", 1, T0))
    for clock in (T0, T0 + 1_000_000, T0 + 1_999_999):
        assert list(merger.release((True, False), clock_us=clock)) == []
    assert list(merger.release((True, False), clock_us=None)) == []  # no clock estimate: no idle release
    assert merger.pending() == 1
    assert [(leg, i) for leg, i, _ in merger.release((True, False), clock_us=T0 + 2_000_000)] == [(X, "5-0")]


def test_the_other_legs_tick_releases_without_waiting_for_any_grace():
    merger = TwoLegMerger(idle_grace_us=2_000_000)
    merger.push(Y, "1-0", tick("sim.AA", 1, T0 + 10))
    merger.push(Y, "1-1", tick("sim.AA", 2, T0 + 30))
    merger.push(X, "2-0", tick("sim.BB", 1, T0 + 10))  # same time as y's first: y goes first
    merger.push(X, "2-1", tick("sim.BB", 2, T0 + 20))
    released = [(leg, i) for leg, i, _ in merger.release((False, False), clock_us=T0 + 30)]
    assert released == [(Y, "1-0"), (X, "2-0"), (X, "2-1")]
    assert merger.pending() == 1  # y's last waits for x


def read_once(runner: PairRunner) -> int:
    """One XREADGROUP over both legs of the pair, issued the way the worker issues it."""
    ids, count = runner.read_request()
    return runner.take(runner.r.xreadgroup(runner.group, runner.consumer, ids, count=count), count)


@pytest.mark.parametrize(("pair", "held"), [(SAME_VENUE, False), (TWO_VENUES, True)])
def test_runner_merges_with_its_pairs_grace(settings, redis_client, db, pair, held):
    """A lone tick on one leg: released at once for a one-venue pair; held for the grace otherwise."""
    cfg = analytics_settings(settings, timeframes=["1s"], window=5)
    conn = psycopg.connect(settings.database_dsn, autocommit=True)
    try:
        runner = PairRunner(
            pair, r=redis_client, conn=conn, settings=cfg, window=5, timeframes=["1s"], method="ols"
        )
        assert runner.merger.idle_grace_us == (2_000_000 if held else 0)
        runner.start()
        now_us = time.time_ns() // 1000
        publish_ticks(redis_client, cfg.keys, [tick(pair.y.id, 1, now_us, 2500.0)])
        assert read_once(runner) == 0  # the (empty) pending list
        assert read_once(runner) == 1
        released, batch = runner.fold()
        if held:
            assert (released, batch) == (0, None)
            assert runner.merger.pending() == 1
            wait_s = runner.next_deadline() - time.time()
            assert 1.0 < wait_s <= 2.0  # due when the estimated clock is 2 s past the tick
        else:
            assert released == 1 and batch is not None
            assert [t.trade_id for t in batch.out.ticks] == [1]
            assert runner.merger.pending() == 0
    finally:
        conn.close()
