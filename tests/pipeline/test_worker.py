"""The analytics worker against real Redis and PostgreSQL, on the seeded generator's ticks."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from shared.instruments import Pair
from shared.messages import Tick, from_fields
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.testing.streams import publish_ticks
from tests.pipeline.helpers import (
    analytics_settings,
    assert_same_rows,
    run_worker_until_idle,
    start_worker_process,
    stored_bars,
    stored_metrics,
    table_snapshot,
    wait_for,
)
from tests.pipeline.reference import (
    assert_close_or_both_nan,
    reference_bars,
    reference_metrics,
    reference_pair_series,
    ticks_frame,
)

SPEC = CointegratedSpec(duration_s=360, seed=5)
PAIR = Pair.parse(f"{SPEC.y_instrument}~{SPEC.x_instrument}")
WINDOW = 40


@pytest.fixture(scope="module")
def ticks() -> list[Tick]:
    return generate_ticks(SPEC)


def test_stored_rows_match_references(settings, redis_client, db, ticks):
    publish_ticks(redis_client, settings.keys, ticks)
    cfg = analytics_settings(settings, window=WINDOW, timeframes=["1s", "1m"])
    run_worker_until_idle(cfg, [PAIR])

    frame = ticks_frame(ticks)
    for tf in ("1s", "1m"):
        ref_y, ref_x = (reference_bars(frame, inst, tf) for inst in (PAIR.y.id, PAIR.x.id))
        for inst, ref in ((PAIR.y.id, ref_y), (PAIR.x.id, ref_x)):
            ours = stored_bars(db, inst, tf)
            ref = ref.loc[: ours.index[-1]]
            assert list(ours.index) == list(ref.index), f"{inst} {tf}: stored buckets differ (gap or extra)"
            for col in ("open", "high", "low", "close", "volume", "trades"):
                assert (ours[col].to_numpy() == ref[col].to_numpy()).all(), f"{inst} {tf} {col}"
        mets = stored_metrics(db, PAIR.id, tf)
        series = reference_pair_series(ref_y, ref_x).iloc[: len(mets)]
        ref_m = reference_metrics(series, WINDOW)
        assert np.array_equal(mets.y_price.to_numpy(), series.y.to_numpy())
        for field, rtol in {"beta": 1e-9, "zscore": 1e-8, "correlation": 1e-9, "spread": 1e-7}.items():
            assert_close_or_both_nan(mets[field].to_numpy(dtype=float), ref_m[field].to_numpy(), rtol, 1e-9, field)

    # Every metric row was also published, in order, on the pair's metric stream.
    published = [from_fields(f) for _, f in redis_client.xrange(settings.keys.metrics(PAIR.id))]
    stored_count = db.execute("SELECT count(*) FROM pair_metrics").fetchone()[0]
    assert len(published) == stored_count
    assert [(m.timeframe, m.seq) for m in published if m.timeframe == "1s"] == [
        ("1s", i) for i in range(len(stored_metrics(db, PAIR.id, "1s")))
    ]
    # Stored ticks: no duplicates, and the only ones not yet folded in are a leg's newest ticks, held
    # back by the event-time merge because the other leg has shown nothing as late yet.
    stored = set(db.execute("SELECT instrument, trade_id FROM ticks").fetchall())
    assert len(stored) == db.execute("SELECT count(*) FROM ticks").fetchone()[0]
    held = [t for t in ticks if (t.instrument, t.trade_id) not in stored]
    newest_other = {
        leg.id: max(t.ts_event_us for t in ticks if t.instrument != leg.id and (t.instrument, t.trade_id) in stored)
        for leg in PAIR.legs
    }
    assert all(t.ts_event_us >= newest_other[t.instrument] for t in held)


def test_second_run_over_same_ticks_leaves_identical_rows(settings, redis_client, db, ticks):
    publish_ticks(redis_client, settings.keys, ticks)
    cfg = analytics_settings(settings, window=WINDOW, timeframes=["1s", "1m"])
    run_worker_until_idle(cfg, [PAIR])
    first = table_snapshot(db)
    # Forget the consumer groups and the checkpoint: the whole history is delivered and processed again.
    for leg in PAIR.legs:
        redis_client.xgroup_destroy(settings.keys.ticks(leg.id), f"analytics:{PAIR.id}")
    db.execute("DELETE FROM pair_state")
    run_worker_until_idle(cfg, [PAIR])
    assert_same_rows(table_snapshot(db), first)


@pytest.mark.slow
def test_worker_killed_midway_resumes_to_identical_rows(settings, redis_client, db, ticks):
    """SIGKILL the worker process twice mid-stream; the final rows equal an uninterrupted run's."""
    publish_ticks(redis_client, settings.keys, ticks)
    cfg = analytics_settings(settings, window=WINDOW, timeframes=["1s", "1m"], read_count=150)
    run_worker_until_idle(cfg, [PAIR])
    reference = table_snapshot(db)
    for table in ("bars", "pair_metrics", "ticks", "pair_state"):
        db.execute(f"DELETE FROM {table}")
    for leg in PAIR.legs:
        redis_client.xgroup_destroy(settings.keys.ticks(leg.id), f"analytics:{PAIR.id}")
    metrics_key = settings.keys.metrics(PAIR.id)
    redis_client.delete(metrics_key)

    env = {"ANALYTICS_READ_COUNT": "150", "ANALYTICS_WINDOW": str(WINDOW), "ANALYTICS_TIMEFRAMES": '["1s","1m"]'}
    total = len(reference["metrics"])
    for kill_at in (total // 5, (3 * total) // 5):
        proc = start_worker_process(settings, [PAIR], instance=f"victim-{kill_at}", **env)
        reached = wait_for(lambda n=kill_at: db.execute("SELECT count(*) FROM pair_metrics").fetchone()[0] >= n, 60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert reached, proc.stderr.read().decode()[-2000:]
    run_worker_until_idle(analytics_settings(settings, window=WINDOW, timeframes=["1s", "1m"], instance="heir"), [PAIR])

    assert_same_rows(table_snapshot(db), reference)
    published = [from_fields(f) for _, f in redis_client.xrange(metrics_key)]
    keys = [(m.timeframe, m.ts_event_us, m.seq) for m in published]
    assert len(keys) == len(set(keys)) == len(reference["metrics"]), "metric stream has gaps or duplicates"
    pending = sum(redis_client.xpending(settings.keys.ticks(leg.id), f"analytics:{PAIR.id}")["pending"] for leg in PAIR.legs)
    assert pending <= 2  # at most the last, still-open ticks of each leg


def test_pair_configuration_change_reaches_a_running_worker(settings, redis_client, db, ticks):
    """Edit the pair (method, window) in the database and announce it: the worker switches, no restart."""
    from services.analytics.worker import AnalyticsWorker

    half = len(ticks) // 2
    publish_ticks(redis_client, settings.keys, ticks[:half])
    worker = AnalyticsWorker(analytics_settings(settings, window=WINDOW, timeframes=["1s"]), pairs=[PAIR])
    try:
        worker.run_until_idle(idle_rounds=3)
        assert {r[0] for r in db.execute("SELECT DISTINCT method FROM pair_metrics")} == {"ols"}
        db.execute("UPDATE pairs SET hedge_method = 'huber', \"window\" = 25 WHERE id = %s", (PAIR.id,))
        redis_client.publish(settings.keys.pairs_changed_channel, PAIR.id)
        publish_ticks(redis_client, settings.keys, ticks[half:])
        worker.run_until_idle(idle_rounds=3)
    finally:
        worker.close()
    rows = db.execute("SELECT method, \"window\", count(*), count(beta) FROM pair_metrics GROUP BY 1, 2").fetchall()
    by_method = {r[0]: r for r in rows}
    assert set(by_method) == {"ols", "huber"}
    assert by_method["huber"][1] == 25 and by_method["huber"][3] > 0  # warmed up again on the new window


def test_heartbeat_check_and_prometheus_metrics(settings, redis_client, db, ticks):
    """`pairs analytics --check` follows the worker's heartbeat; its /metrics shows writes and lag."""
    import subprocess
    import sys

    import httpx

    from services.analytics.worker import AnalyticsWorker
    from tests.pipeline.helpers import REPO, worker_env

    def check(instance: str) -> int:
        cmd = [sys.executable, "-m", "services.analytics", "--check", "--instance", instance]
        return subprocess.run(cmd, cwd=REPO, env=worker_env(settings), capture_output=True, timeout=60).returncode

    publish_ticks(redis_client, settings.keys, ticks[:3000])
    worker = AnalyticsWorker(
        analytics_settings(settings, window=WINDOW, timeframes=["1s"], instance="hb-1", metrics_port=0), pairs=[PAIR]
    )
    try:
        worker.run_until_idle(idle_rounds=3)
        worker._last_heartbeat = 0.0
        worker._heartbeat()
        assert check("hb-1") == 0
        port = worker._metrics_server.server_port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        written = db.execute("SELECT count(*) FROM bars").fetchone()[0]
        assert f'pairs_bars_written_total{{timeframe="1s"}} {float(written)}' in text
        assert "pairs_stream_lag_entries" in text
    finally:
        worker.close()
    assert check("hb-1") == 1  # stopped: the heartbeat is gone


@pytest.mark.parametrize(
    "old_state",
    [b'{"pair": "x", "format": 1, "signals": {}}', b"\xc1\x00 not MessagePack"],
    ids=["older-layout", "unreadable"],
)
def test_checkpoint_from_another_build_is_discarded_not_fatal(settings, redis_client, db, ticks, old_state):
    """An upgrade that changes the checkpoint layout (or a blob no build can read): the worker starts
    the pair afresh and goes on."""
    half = len(ticks) // 2
    publish_ticks(redis_client, settings.keys, ticks[:half])
    cfg = analytics_settings(settings, window=WINDOW, timeframes=["1s"])
    run_worker_until_idle(cfg, [PAIR])
    before = db.execute("SELECT count(*) FROM pair_metrics").fetchone()[0]
    db.execute("UPDATE pair_state SET state = %s WHERE pair = %s", (old_state, PAIR.id))
    publish_ticks(redis_client, settings.keys, ticks[half:])
    run_worker_until_idle(cfg, [PAIR])
    after = db.execute("SELECT count(*), max(seq) FROM pair_metrics WHERE timeframe = '1s'").fetchone()
    assert after[0] > before  # new observations were computed and stored
    published = [from_fields(f) for _, f in redis_client.xrange(settings.keys.metrics(PAIR.id))]
    assert len(published) == db.execute("SELECT count(*) FROM pair_metrics").fetchone()[0]  # and published
    keys = [(m.timeframe, m.ts_event_us, m.seq) for m in published]
    assert len(keys) == len(set(keys))
