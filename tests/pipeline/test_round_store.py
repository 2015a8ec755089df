"""One transaction per round: ``PairStore.write_round`` and ``rounds.commit_round``, on real PostgreSQL and Redis.

* Pairs sharing an instrument both build its bars; the round keeps one row per bar (the one with
  most trades, the later batch on a tie), exactly what writing the batches one by one leaves.
* A pair fenced by a newer owner is left out (nothing of it written) while the others commit.
* A batch the database refuses rolls the whole round back; ``commit_round`` then commits the
  other pairs one by one and sends only the failing pair back to its checkpoint.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import msgspec
import psycopg
import pytest
import redis
from psycopg import sql

from services.analytics.engine import EngineOutput, PairEngine
from services.analytics.rounds import commit_round
from services.analytics.runner import PairRunner
from services.analytics.store import PairBatch, PairStore, claim_fence, load_checkpoint, register_pair
from shared.errors import LeaseLost
from shared.instruments import Pair
from shared.messages import Metric, Tick, from_fields, to_fields
from shared.observability import ServiceMetrics
from shared.streams import Keys
from shared.testing.generator import CointegratedSpec, generate_ticks
from tests.pipeline.helpers import analytics_settings, run_worker_until_idle

TFS = ["1s"]
WINDOW = 5
SEC = 1_000_000
START_US = CointegratedSpec().start_us
DATA_TABLES = ("bars", "pair_metrics", "ticks", "pair_state")


# --- building batches with real engines ---------------------------------------------------------------
def leg_ticks(instrument: str, seed: int, duration_s: float = 30.0) -> list[Tick]:
    """One instrument's ticks from the seeded generator (its y leg, about 12 trades a second)."""
    spec = CointegratedSpec(
        y_instrument=instrument, x_instrument="sim.UNUSED", duration_s=duration_s, seed=seed
    )
    return [t for t in generate_ticks(spec) if t.instrument == instrument]


def second_of(tick: Tick) -> int:
    return (tick.ts_event_us - START_US) // SEC


def by_second(ticks: list[Tick]) -> dict[int, list[Tick]]:
    out: dict[int, list[Tick]] = defaultdict(list)
    for t in ticks:
        out[second_of(t)].append(t)
    return out


def variant(
    ticks: list[Tick], keep: dict[int, int] | None = None, reprice: set[int] = frozenset()
) -> list[Tick]:
    """The shared leg as one pair saw it: only the first ``keep[s]`` trades of second ``s`` (a trimmed
    history), and the last trade of each second in ``reprice`` printed 1.0 higher (same trade count,
    other values)."""
    keep = keep or {}
    out: list[Tick] = []
    for sec, group in sorted(by_second(ticks).items()):
        if sec in keep:
            group = group[: keep[sec]]
        if sec in reprice:
            group = [*group[:-1], msgspec.structs.replace(group[-1], price=group[-1].price + 1.0)]
        out.extend(group)
    return out


def run_engine(
    pair: Pair, y: list[Tick], x: list[Tick], engine: PairEngine | None = None
) -> tuple[PairEngine, EngineOutput]:
    engine = engine or PairEngine(pair, TFS, WINDOW)
    out = EngineOutput()
    merged = sorted(
        [(t.ts_event_us, 0, t) for t in y] + [(t.ts_event_us, 1, t) for t in x], key=lambda r: r[:2]
    )
    for _, leg, tick in merged:
        engine.process(leg, tick, out)
    return engine, out


def make_batch(pair: Pair, engine: PairEngine, out: EngineOutput, fence: int, n: int) -> PairBatch:
    return PairBatch(pair.id, fence, out, engine.get_state(), [f"{n}-0", f"{n}-1"])


def register(conn: psycopg.Connection, *pairs: Pair) -> None:
    for pair in pairs:
        register_pair(conn, pair, window=WINDOW, timeframes=TFS, method="ols")


# --- reading back -------------------------------------------------------------------------------------
def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        "bars": conn.execute("SELECT * FROM bars ORDER BY instrument, timeframe, ts").fetchall(),
        "metrics": conn.execute("SELECT * FROM pair_metrics ORDER BY pair, timeframe, ts, seq").fetchall(),
        "tick_keys": conn.execute("SELECT instrument, ts, trade_id FROM ticks ORDER BY 1, 2, 3").fetchall(),
        "state": conn.execute(
            "SELECT pair, state, last_ids, outbox, fence FROM pair_state ORDER BY pair"
        ).fetchall(),
    }


def pair_rows(conn: psycopg.Connection, pair: Pair) -> dict[str, list[tuple]]:
    """Everything stored for one pair and its own instruments (those it shares with no other pair here)."""
    legs = [pair.y.id, pair.x.id]
    return {
        "state": conn.execute("SELECT * FROM pair_state WHERE pair = %s", (pair.id,)).fetchall(),
        "metrics": conn.execute(
            "SELECT * FROM pair_metrics WHERE pair = %s ORDER BY timeframe, ts, seq", (pair.id,)
        ).fetchall(),  # fmt: skip
        "bars": conn.execute(
            "SELECT * FROM bars WHERE instrument = ANY(%s) ORDER BY 1, 2, 3", (legs,)
        ).fetchall(),
        "ticks": conn.execute(
            "SELECT * FROM ticks WHERE instrument = ANY(%s) ORDER BY 1, 2, 3", (legs,)
        ).fetchall(),
    }


def stored_bar(conn: psycopg.Connection, instrument: str, sec: int) -> tuple:
    row = conn.execute(
        "SELECT open, high, low, close, trades FROM bars WHERE instrument = %s AND timeframe = '1s' "
        "AND ts = to_timestamp(%s::double precision / 1e6)",
        (instrument, START_US + sec * SEC),
    ).fetchone()
    assert row is not None, f"no {instrument} bar for second {sec}"
    return row


def expected_bar(ticks: list[Tick]) -> tuple:
    prices = [t.price for t in ticks]
    return (prices[0], max(prices), min(prices), prices[-1], len(ticks))


def empty_data_tables(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE " + ", ".join(DATA_TABLES))


def count(conn: psycopg.Connection, sql: str, *args) -> int:
    return conn.execute(sql, args).fetchone()[0]


# --- (a) a shared instrument ----------------------------------------------------------------------------
def test_round_with_a_shared_instrument_stores_each_bar_once_as_one_by_one_writes_would(db):
    b_all = leg_ticks("sim.BB", seed=1)
    busy = [s for s, group in sorted(by_second(b_all).items()) if len(group) >= 3][1:-2]
    s1, s2, s3, s4, s5 = busy[0], busy[2], busy[4], busy[6], busy[8]
    full = by_second(b_all)
    # How each pair saw sim.BB (P0's batch is stored before the round):
    v0 = variant(b_all, keep={s1: 1, s3: 1, s5: 1})
    v1 = variant(b_all, keep={s3: 1, s4: 1}, reprice={s5})
    v2 = variant(b_all, keep={s1: 1, s4: 2}, reprice={s2})
    p0, p1, p2 = (Pair.parse(f"sim.{y}~sim.BB") for y in ("GG", "AA", "CC"))
    register(db, p0, p1, p2)
    batches = []
    for n, (pair, b_seen, seed) in enumerate(((p0, v0, 10), (p1, v1, 11), (p2, v2, 12))):
        engine, out = run_engine(pair, leg_ticks(pair.y.id, seed), b_seen)
        batches.append(make_batch(pair, engine, out, fence=0, n=n + 1))
    b0, b1, b2 = batches
    # Precondition: the round really holds the same sim.BB bar twice, with different values.
    keys = [
        (b.instrument, b.ts_event_us)
        for batch in (b1, b2)
        for b in batch.out.bars
        if b.instrument == "sim.BB"
    ]
    assert len(keys) > len(set(keys)) > 20

    store = PairStore(db)
    store.write(b0)
    assert store.write_round([b1, b2]) == {}
    round_rows = snapshot(db)

    # Independently of the store: the bar with most trades survives, the later batch on a tie, and
    # a stored bar with more trades than any of the round's is kept.
    # s1: P1's full bar beats P2's later, partial one
    assert stored_bar(db, "sim.BB", s1) == expected_bar(full[s1])
    # s2: a tie, P2's (repriced) bar, the later one
    assert stored_bar(db, "sim.BB", s2) == expected_bar(by_second(v2)[s2]) != expected_bar(full[s2])
    # s3: P2's full bar beats P1's partial one
    assert stored_bar(db, "sim.BB", s3) == expected_bar(full[s3])
    # s4: the stored full bar outlives the round's bars of 1 and 2 trades
    assert stored_bar(db, "sim.BB", s4) == expected_bar(full[s4])
    # s5: a tie of P1 (repriced) and P2: P2's, over the stored bar of 1 trade
    assert stored_bar(db, "sim.BB", s5) == expected_bar(full[s5]) != expected_bar(by_second(v1)[s5])
    bar_keys = {(b.instrument, b.timeframe, b.ts_event_us) for batch in batches for b in batch.out.bars}
    assert len(round_rows["bars"]) == len(bar_keys)
    for batch in batches:
        assert count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", batch.pair_id) == len(
            batch.out.metrics
        )

    # The same batches written one after the other, each in its own transaction.
    empty_data_tables(db)
    store.write(b0)
    store.write(b1)
    store.write(b2)
    one_by_one = snapshot(db)
    assert round_rows["bars"] == one_by_one["bars"]
    assert round_rows == one_by_one


# --- (b) fencing ------------------------------------------------------------------------------------------
def test_fenced_pair_is_left_out_while_the_others_commit(db):
    p1, p2 = Pair.parse("sim.AA~sim.BB"), Pair.parse("sim.CC~sim.DD")
    register(db, p1, p2)
    ticks = {
        i: leg_ticks(i, seed) for i, seed in (("sim.AA", 21), ("sim.BB", 22), ("sim.CC", 23), ("sim.DD", 24))
    }
    half = START_US + 15 * SEC

    def halves(inst: str) -> tuple[list[Tick], list[Tick]]:
        return [t for t in ticks[inst] if t.ts_event_us < half], [
            t for t in ticks[inst] if t.ts_event_us >= half
        ]

    (a1, a2), (b1, b2), (c1, c2), (d1, d2) = (halves(i) for i in ("sim.AA", "sim.BB", "sim.CC", "sim.DD"))
    e1, out1 = run_engine(p1, a1, b1)
    e2, out2 = run_engine(p2, c1, d1)
    store = PairStore(db)
    claim_fence(db, p2.id, 5)
    # A batch carrying exactly the stored token is current: it commits (and an unfenced pair with no row at all).
    assert store.write_round([make_batch(p1, e1, out1, 0, 1), make_batch(p2, e2, out2, 5, 1)]) == {}
    assert load_checkpoint(db, p2.id).last_ids == ["1-0", "1-1"]

    claim_fence(db, p2.id, 7)  # a new owner takes p2
    with pytest.raises(LeaseLost):
        claim_fence(db, p2.id, 6)  # and an older token cannot be claimed any more
    p2_before = pair_rows(db, p2)
    assert p2_before["state"][0][4] == 7 and p2_before["metrics"] and p2_before["bars"] and p2_before["ticks"]
    metrics_p1 = count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", p1.id)

    _, out1b = run_engine(p1, a2, b2, e1)
    _, out2b = run_engine(p2, c2, d2, e2)
    assert out1b.metrics and out2b.metrics and out2b.bars
    late_p1, stale_p2 = make_batch(p1, e1, out1b, 0, 2), make_batch(p2, e2, out2b, 5, 2)
    assert store.write_round([stale_p2, late_p1]) == {p2.id: 7}

    assert pair_rows(db, p2) == p2_before  # nothing of the fenced batch, not even its checkpoint
    assert count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", p1.id) == metrics_p1 + len(
        out1b.metrics
    )
    cp = load_checkpoint(db, p1.id)
    assert cp.last_ids == ["2-0", "2-1"]
    assert len(cp.outbox) == len(out1b.metrics)
    assert cp.state == msgspec.json.decode(msgspec.json.encode(e1.get_state()))  # after the second batch

    with pytest.raises(LeaseLost, match="7"):
        store.write(stale_p2)
    assert store.write_round([stale_p2]) == {p2.id: 7}  # a round of fenced pairs only: nothing written
    assert pair_rows(db, p2) == p2_before


# --- (c) a batch the database refuses -------------------------------------------------------------------
def with_bad_instrument(tick: Tick) -> Tick:
    """A tick that decodes and validates but that PostgreSQL refuses: text cannot hold a NUL character
    (in its ``source``; a wrong ``instrument`` is dead-lettered before it gets that far)."""
    return msgspec.structs.replace(tick, source=tick.source + "\x00")


@contextmanager
def database_refusing(db: psycopg.Connection, tick: Tick):
    """The database refuses to store this one (valid) tick: a CHECK constraint for the test's span.
    Through the streams a tick cannot carry a value PostgreSQL refuses by itself: decoding and
    validation catch those first."""
    db.execute(sql.SQL("ALTER TABLE ticks ADD CONSTRAINT refuse_one_tick CHECK (NOT (instrument = {} AND trade_id = {}))")
               .format(sql.Literal(tick.instrument), sql.Literal(tick.trade_id)))  # fmt: skip
    try:
        yield
    finally:
        db.execute("ALTER TABLE ticks DROP CONSTRAINT refuse_one_tick")


def test_a_refused_batch_rolls_the_whole_round_back(db):
    good, bad = Pair.parse("sim.AA~sim.BB"), Pair.parse("sim.CC~sim.DD")
    register(db, good, bad)
    c_ticks = leg_ticks("sim.CC", 31, duration_s=10)
    c_ticks[len(c_ticks) // 2] = with_bad_instrument(c_ticks[len(c_ticks) // 2])
    good_batch = make_batch(
        good, *run_engine(good, leg_ticks("sim.AA", 32, 10), leg_ticks("sim.BB", 33, 10)), 0, 1
    )
    bad_batch = make_batch(bad, *run_engine(bad, c_ticks, leg_ticks("sim.DD", 34, 10)), 0, 1)
    store = PairStore(db)
    with pytest.raises(psycopg.errors.CharacterNotInRepertoire):
        store.write_round([good_batch, bad_batch])
    for table in DATA_TABLES:
        assert count(db, f"SELECT count(*) FROM {table}") == 0, f"{table} kept rows of a rolled-back round"
    store.write(good_batch)  # the connection is usable again, and the good batch alone commits
    assert count(db, "SELECT count(*) FROM pair_metrics") == len(good_batch.out.metrics) > 0
    assert load_checkpoint(db, good.id).last_ids == ["1-0", "1-1"]


def publish_legs(r: redis.Redis, keys: Keys, pair: Pair, y: list[Tick], x: list[Tick]) -> dict[int, str]:
    """Put each leg's ticks on that leg's stream (in event-time order); returns {position in y: entry id}."""
    merged = sorted([(t.ts_event_us, 0, i, t) for i, t in enumerate(y)] + [(t.ts_event_us, 1, i, t) for i, t in enumerate(x)],
                    key=lambda row: row[:3])  # fmt: skip
    ids = {}
    for _, leg, i, tick in merged:
        entry_id = r.xadd(keys.ticks(pair.legs[leg].id), to_fields(tick)).decode()
        if leg == 0:
            ids[i] = entry_id
    return ids


def pending_count(r: redis.Redis, stream: str, group: str) -> int:
    return r.xpending(stream, group)["pending"]


def metric_values(m: Metric) -> dict:
    values = msgspec.structs.asdict(m)
    values.pop("ts_compute_us")
    return values


def stored_metric_values(conn: psycopg.Connection, pair: Pair) -> list[tuple]:
    return conn.execute(
        "SELECT timeframe, (extract(epoch FROM ts) * 1e6)::bigint, seq, y_price, x_price, warm, beta, alpha, r2, "
        "spread, zscore, correlation, adf_stat, adf_p, half_life FROM pair_metrics WHERE pair = %s ORDER BY ts, seq",
        (pair.id,),
    ).fetchall()


def as_row(m: Metric) -> tuple:
    return (m.timeframe, m.ts_event_us, m.seq, m.y_price, m.x_price, m.warm, m.beta, m.alpha, m.r2, m.spread,
            m.zscore, m.correlation, m.adf_stat, m.adf_p, m.half_life)  # fmt: skip


def read_once(runner: PairRunner) -> int:
    """One XREADGROUP over both legs of the pair, issued the way the worker issues it."""
    ids, count = runner.read_request()
    return runner.take(runner.r.xreadgroup(runner.group, runner.consumer, ids, count=count), count)


def drain(runner: PairRunner, max_polls: int = 20_000) -> None:
    quiet = 0
    for _ in range(max_polls):
        quiet = quiet + 1 if read_once(runner) + runner.process_alone() == 0 else 0
        if quiet >= 3:
            return
    raise AssertionError(f"{runner.pair.id} never went idle")


def test_commit_round_isolates_a_refused_batch_and_commits_the_other_pairs(settings, redis_client, db):
    cfg = analytics_settings(settings, window=WINDOW, timeframes=TFS, max_deliveries=2)
    keys = cfg.keys
    p1, p2, p3 = Pair.parse("sim.AA~sim.BB"), Pair.parse("sim.CC~sim.BB"), Pair.parse("sim.EE~sim.FF")
    b_ticks = leg_ticks("sim.BB", 41, 10)
    publish_legs(redis_client, keys, p1, leg_ticks("sim.AA", 42, 10), [])
    publish_legs(redis_client, keys, p2, leg_ticks("sim.CC", 43, 10), b_ticks)  # sim.BB once: both pairs read it
    e_ticks, f_ticks = leg_ticks("sim.EE", 44, 10), leg_ticks("sim.FF", 45, 10)
    bad_at = len(e_ticks) // 2
    e_ids = publish_legs(redis_client, keys, p3, e_ticks, f_ticks)
    bad_id = e_ids[bad_at]

    conn = psycopg.connect(settings.database_dsn, autocommit=True)
    with database_refusing(db, e_ticks[bad_at]):
        _commit_round_isolates(cfg, keys, redis_client, db, conn, (p1, p2, p3), e_ticks, f_ticks, bad_at, bad_id)


def _commit_round_isolates(cfg, keys, redis_client, db, conn, pairs, e_ticks, f_ticks, bad_at, bad_id) -> None:
    p1, p2, p3 = pairs
    try:
        runners = [
            PairRunner(
                p, r=redis_client, conn=conn, settings=cfg, window=WINDOW, timeframes=TFS, method="ols"
            )
            for p in (p1, p2, p3)
        ]
        pending = []
        for runner in runners:
            runner.start()
            assert read_once(runner) == 0  # its (empty) pending list
            assert read_once(runner) > 0
            released, batch = runner.fold()
            assert released > 0 and batch is not None and batch.out.metrics
            pending.append((runner, batch))
        store = PairStore(conn)
        with pytest.raises(psycopg.errors.CheckViolation):  # the round as one transaction fails
            store.write_round([batch for _, batch in pending])
        assert count(db, "SELECT count(*) FROM pair_metrics") == 0

        assert commit_round(store, redis_client, pending, ServiceMetrics.create()) == {}

        for runner, batch in pending[:2]:  # committed, acknowledged, published
            pid = runner.pair.id
            assert count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", pid) == len(
                batch.out.metrics
            )
            assert load_checkpoint(db, pid).last_ids == batch.last_ids
            assert all(pending_count(redis_client, s, runner.group) == 0 for s in runner.streams)
            published = redis_client.xrange(keys.metrics(pid))
            assert [i.decode() for i, _ in published] == batch.out.metric_ids
            assert not runner.careful
        # The refused pair: nothing stored, nothing acknowledged, back to its checkpoint.
        runner3 = pending[2][0]
        assert count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", p3.id) == 0
        assert count(db, "SELECT count(*) FROM ticks WHERE instrument LIKE 'sim.EE%%' OR instrument = 'sim.FF'") == 0
        assert load_checkpoint(db, p3.id) is None
        assert pending_count(redis_client, runner3.streams[0], runner3.group) == len(e_ticks)
        assert redis_client.xlen(keys.metrics(p3.id)) == 0
        assert runner3.careful and runner3.stats["retries"] == 1

        # On its own, the pair finds the culprit, dead-letters exactly it, and computes the rest.
        drain(runner3)
        dead = redis_client.xrange(keys.deadletter(runner3.group))
        assert [(f[b"id"].decode(), f[b"stream"].decode()) for _, f in dead] == [(bad_id, runner3.streams[0])]
        assert all(pending_count(redis_client, s, runner3.group) == 0 for s in runner3.streams)
        _, reference = run_engine(p3, e_ticks[:bad_at] + e_ticks[bad_at + 1 :], f_ticks)
        stored = stored_metric_values(db, p3)
        assert stored[: len(reference.metrics)] == [as_row(m) for m in reference.metrics]
        assert len(stored) - len(reference.metrics) in (0, 1)  # and the last bar's, if the idle clock closed it
        published = [from_fields(f, Metric) for _, f in redis_client.xrange(keys.metrics(p3.id))]
        assert [metric_values(m) for m in published[: len(reference.metrics)]] == [
            metric_values(m) for m in reference.metrics
        ]
    finally:
        conn.close()


def test_commit_round_reports_a_fenced_pair_and_does_not_acknowledge_it(settings, redis_client, db):
    cfg = analytics_settings(settings, window=WINDOW, timeframes=TFS)
    p1, p2 = Pair.parse("sim.AA~sim.BB"), Pair.parse("sim.CC~sim.DD")
    publish_legs(redis_client, cfg.keys, p1, leg_ticks("sim.AA", 51, 5), leg_ticks("sim.BB", 52, 5))
    publish_legs(redis_client, cfg.keys, p2, leg_ticks("sim.CC", 53, 5), leg_ticks("sim.DD", 54, 5))
    conn = psycopg.connect(settings.database_dsn, autocommit=True)
    try:
        runners = [PairRunner(p, r=redis_client, conn=conn, settings=cfg, window=WINDOW, timeframes=TFS, method="ols")
                   for p in (p1, p2)]  # fmt: skip
        pending = []
        for runner in runners:
            runner.start()
            read_once(runner)
            read_once(runner)
            _, batch = runner.fold()
            pending.append((runner, batch))
        claim_fence(conn, p2.id, 3)  # a newer owner of p2 (these runners carry token 0)
        lost = commit_round(PairStore(conn), redis_client, pending, ServiceMetrics.create())
        assert list(lost) == [p2.id] and "token 3 (ours is 0)" in lost[p2.id]
        assert count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", p2.id) == 0
        assert count(db, "SELECT count(*) FROM pair_metrics WHERE pair = %s", p1.id) == len(
            pending[0][1].out.metrics
        )
        assert sum(pending_count(redis_client, s, runners[1].group) for s in runners[1].streams) > 0
        assert redis_client.xlen(cfg.keys.metrics(p2.id)) == 0
        assert all(pending_count(redis_client, s, runners[0].group) == 0 for s in runners[0].streams)
    finally:
        conn.close()


def test_worker_round_with_a_refused_batch_retries_only_that_pair(settings, redis_client, db):
    """The same through a worker: the round fails once, the good pairs commit in its fallback and
    never go back to their checkpoint; the bad pair dead-letters its one bad entry."""
    cfg = analytics_settings(settings, window=WINDOW, timeframes=TFS, max_deliveries=2)
    keys = cfg.keys
    p1, p2, p3 = Pair.parse("sim.AA~sim.BB"), Pair.parse("sim.CC~sim.BB"), Pair.parse("sim.EE~sim.FF")
    a_ticks, b_ticks, c_ticks = (
        leg_ticks("sim.AA", 61, 8),
        leg_ticks("sim.BB", 62, 8),
        leg_ticks("sim.CC", 63, 8),
    )
    e_ticks, f_ticks = leg_ticks("sim.EE", 64, 8), leg_ticks("sim.FF", 65, 8)
    bad_at = len(e_ticks) // 3
    publish_legs(redis_client, keys, p1, a_ticks, [])
    publish_legs(redis_client, keys, p2, c_ticks, b_ticks)
    e_ids = publish_legs(redis_client, keys, p3, e_ticks, f_ticks)

    with database_refusing(db, e_ticks[bad_at]):
        worker = run_worker_until_idle(cfg, [p1, p2, p3])

    stats = {pid: runner.stats for pid, runner in worker.runners.items()}
    assert stats[p1.id]["retries"] == 0 and stats[p2.id]["retries"] == 0
    assert stats[p3.id]["retries"] >= 2 and stats[p3.id]["deadletters"] == 1
    dead = redis_client.xrange(keys.deadletter(Keys.analytics_group(p3.id)))
    assert [f[b"id"].decode() for _, f in dead] == [e_ids[bad_at]]
    for pair, y, x in (
        (p1, a_ticks, b_ticks),
        (p2, c_ticks, b_ticks),
        (p3, e_ticks[:bad_at] + e_ticks[bad_at + 1 :], f_ticks),
    ):
        _, reference = run_engine(pair, y, x)
        stored = stored_metric_values(db, pair)
        assert reference.metrics and stored[: len(reference.metrics)] == [
            as_row(m) for m in reference.metrics
        ], pair.id
        assert len(stored) - len(reference.metrics) in (0, 1), pair.id
    assert count(db, "SELECT count(*) FROM ticks WHERE instrument = 'sim.EE'") == len(e_ticks) - 1


def test_a_tick_on_another_instruments_stream_is_dead_lettered_at_once(settings, redis_client, db):
    """A producer bug (a tick put on the wrong stream) must not be stored under one name and
    counted into another instrument's bars: it is set aside with the reason, the rest goes on."""
    cfg = analytics_settings(settings, window=WINDOW, timeframes=TFS)
    pair = Pair.parse("sim.AA~sim.BB")
    a_ticks, b_ticks = leg_ticks("sim.AA", 81, 6), leg_ticks("sim.BB", 82, 6)
    stray_at = len(a_ticks) // 2
    a_ticks[stray_at] = msgspec.structs.replace(a_ticks[stray_at], instrument="sim.ZZ")
    ids = publish_legs(redis_client, cfg.keys, pair, a_ticks, b_ticks)
    worker = run_worker_until_idle(cfg, [pair])
    assert worker.runners[pair.id].stats["retries"] == 0  # refused up front, not after failing
    dead = redis_client.xrange(cfg.keys.deadletter(Keys.analytics_group(pair.id)))
    assert [f[b"id"].decode() for _, f in dead] == [ids[stray_at]]
    assert "'sim.ZZ' on the stream of 'sim.AA'" in dead[0][1][b"error"].decode()
    assert count(db, "SELECT count(*) FROM ticks WHERE instrument = 'sim.ZZ'") == 0
    assert count(db, "SELECT count(*) FROM ticks WHERE instrument = 'sim.AA'") == len(a_ticks) - 1
