"""An idle worker waits on every owned tick stream at once (wakeup.py, worker._wait_for_ticks)."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace

import psycopg
import redis

from services.analytics.wakeup import wake_cursors
from services.analytics.worker import AnalyticsWorker
from shared.instruments import Pair
from shared.messages import Tick
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.testing.streams import publish_ticks
from tests.pipeline.helpers import analytics_settings, wait_for


def runner(streams: tuple[str, str], tops: list[str | None], group: str = "g") -> SimpleNamespace:
    """What wake_cursors reads of a PairRunner: its two tick streams, the newest id read on each,
    and its consumer group."""
    return SimpleNamespace(streams=streams, top_ids=tops, group=group)


# --- wake_cursors ------------------------------------------------------------------------------------------
def test_cursor_is_the_oldest_newest_entry_of_the_pairs_sharing_a_stream(redis_client, settings):
    a, b, c, d = (settings.keys.ticks(f"sim.{s}") for s in ("AA", "BB", "CC", "DD"))
    runners = [
        runner((a, b), ["5-1", "10-0"]),
        runner((c, b), ["7-10", "9-10"]),  # b: "9-10" < "10-0" as ids, though not as strings
        runner((d, c), ["3-0", "7-9"]),  # c: "7-9" < "7-10"
    ]
    assert wake_cursors(redis_client, runners, {}) == {a: "5-1", b: "9-10", c: "7-9", d: "3-0"}
    assert wake_cursors(redis_client, runners[::-1], {}) == {a: "5-1", b: "9-10", c: "7-9", d: "3-0"}
    assert redis_client.exists(a, b, c, d) == 0  # known cursors need no round trip (nothing was created)


def test_cursor_never_goes_back_before_the_entry_that_last_woke_the_wait(redis_client, settings):
    a, b, c = (settings.keys.ticks(f"sim.{s}") for s in ("AA", "BB", "CC"))
    runners = [runner((a, b), ["5-1", "9-5"]), runner((c, b), ["7-0", "9-7"])]
    woken = {a: "4-0", b: "10-0", c: "7-0"}
    assert wake_cursors(redis_client, runners, woken) == {a: "5-1", b: "10-0", c: "7-0"}
    assert wake_cursors(redis_client, runners, {b: "9-6"}) == {a: "5-1", b: "9-6", c: "7-0"}


def test_a_pair_that_has_read_nothing_counts_from_its_groups_last_delivered_id(redis_client, settings):
    keys = settings.keys
    e, f, g, missing = (keys.ticks(f"sim.{s}") for s in ("EE", "FF", "GG", "HH"))
    for i in (1, 2, 3):
        redis_client.xadd(e, {"data": b"x"}, id=f"100-{i}")
    redis_client.xgroup_create(e, "g", id="100-2")  # delivered up to 100-2: 100-3 is still unread
    redis_client.xgroup_create(f, "g", id="0", mkstream=True)  # created, never written
    redis_client.xadd(g, {"data": b"1"}, id="300-0")
    redis_client.xgroup_create(g, "g", id="0")  # 300-0 not delivered yet: the wait must not skip it
    runners = [runner((e, f), [None, None]), runner((g, missing), [None, None])]
    assert wake_cursors(redis_client, runners, {}) == {e: "100-2", f: "0-0", g: "0-0", missing: "$"}
    # another pair on the same stream that has read further does not move the cursor past this group
    runners.append(runner((e, g), ["100-3", "300-0"], group="other"))
    assert wake_cursors(redis_client, runners, {}) == {e: "100-2", f: "0-0", g: "0-0", missing: "$"}
    woken = {e: "100-1", g: "400-0", missing: "500-0"}
    assert wake_cursors(redis_client, runners, woken) == {e: "100-2", f: "0-0", g: "400-0", missing: "$"}


def test_xread_from_the_cursors_returns_only_entries_the_pairs_have_not_read(redis_client, settings):
    a, b = settings.keys.ticks("sim.AA"), settings.keys.ticks("sim.BB")
    for i in range(1, 4):
        redis_client.xadd(a, {"data": b"x"}, id=f"{i}-0")
        redis_client.xadd(b, {"data": b"x"}, id=f"{i}-0")
    cursors = wake_cursors(redis_client, [runner((a, b), ["3-0", "3-0"]), runner((b, a), ["2-0", "3-0"])], {})
    reply = redis_client.xread(cursors, count=10, block=None)
    assert {s.decode(): [i.decode() for i, _ in entries] for s, entries in reply} == {b: ["3-0"]}
    assert (
        redis_client.xread(wake_cursors(redis_client, [runner((a, b), ["3-0", "3-0"])], {}), block=None) == []
    )


# --- a worker owning several pairs -------------------------------------------------------------------------
SPECS = {
    "sim.AA~sim.BB": CointegratedSpec(y_instrument="sim.AA", x_instrument="sim.BB", duration_s=6, seed=71),
    "sim.CC~sim.DD": CointegratedSpec(y_instrument="sim.CC", x_instrument="sim.DD", duration_s=6, seed=72),
    "sim.EE~sim.FF": CointegratedSpec(y_instrument="sim.EE", x_instrument="sim.FF", duration_s=6, seed=73),
}
BLOCK_MS = 5000
PROMPT_S = 2.0  # well under BLOCK_MS: only a wait that wakes on the new tick gets the metrics in so fast
START_US = CointegratedSpec().start_us


def metric_count(conn: psycopg.Connection, pair: str) -> int:
    return conn.execute("SELECT count(*) FROM pair_metrics WHERE pair = %s", (pair,)).fetchone()[0]


def bar_count(conn: psycopg.Connection, instrument: str) -> int:
    return conn.execute("SELECT count(*) FROM bars WHERE instrument = %s", (instrument,)).fetchone()[0]


def seconds(ticks: list[Tick]) -> int:
    return len({(t.ts_event_us - START_US) // 1_000_000 for t in ticks})


def blocked_idle_wait(r: redis.Redis, name: str) -> str | None:
    """Id of the worker's connection blocked in XREAD (the idle wait), if it is in it now."""
    for client in r.client_list():
        if client.get("name") == name and client.get("cmd") == "xread" and "b" in client.get("flags", ""):
            return client["id"]
    return None


def test_idle_worker_wakes_for_a_tick_on_any_owned_pair(settings, redis_client, db):
    name = f"idle-wait-{uuid.uuid4().hex[:8]}"
    cfg = analytics_settings(settings, REDIS_URL=f"{settings.redis_dsn}?client_name={name}", block_ms=BLOCK_MS,
                             timeframes=["1s"], window=5)  # fmt: skip
    pairs = [Pair.parse(p) for p in SPECS]
    ticks = {p: generate_ticks(SPECS[p.id]) for p in pairs}
    first, second, third = pairs
    early = [t for t in ticks[first] if t.ts_event_us < START_US + 3_000_000]
    publish_ticks(redis_client, cfg.keys, early + ticks[second])  # the third pair's streams stay empty

    worker = AnalyticsWorker(cfg, pairs=pairs)
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                worker.run_once()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def all_bars_closed(expected: dict[str, int]) -> bool:
        return all(bar_count(db, inst) == n for inst, n in expected.items())

    def idle() -> bool:
        return not errors and blocked_idle_wait(redis_client, name) is not None

    try:
        # Every bar of the first two pairs closed (the last ones by the idle clock): nothing left to wait for.
        closed = {"sim.AA": seconds([t for t in early if t.instrument == "sim.AA"]),
                  "sim.BB": seconds([t for t in early if t.instrument == "sim.BB"]),
                  "sim.CC": seconds([t for t in ticks[second] if t.instrument == "sim.CC"]),
                  "sim.DD": seconds([t for t in ticks[second] if t.instrument == "sim.DD"])}  # fmt: skip
        assert wait_for(lambda: all_bars_closed(closed), timeout=15), "the first two pairs were not processed"
        assert wait_for(idle, timeout=10), f"the worker never went idle: {errors}"
        assert metric_count(db, third.id) == 0

        # A tick on the pair whose streams were empty (never read) wakes the worker at once.
        published = time.monotonic()
        publish_ticks(redis_client, cfg.keys, ticks[third])
        assert wait_for(lambda: metric_count(db, third.id) > 0, timeout=BLOCK_MS / 1000 + 5), errors
        took = time.monotonic() - published
        assert took < PROMPT_S, f"metrics of the third pair took {took:.2f} s (block_ms {BLOCK_MS})"

        # So does a new tick on a stream the worker had already read up to its end.
        closed.update({"sim.EE": seconds([t for t in ticks[third] if t.instrument == "sim.EE"]),
                       "sim.FF": seconds([t for t in ticks[third] if t.instrument == "sim.FF"])})  # fmt: skip
        assert wait_for(lambda: all_bars_closed(closed), timeout=15)
        assert wait_for(idle, timeout=10), errors
        before = metric_count(db, first.id)
        published = time.monotonic()
        publish_ticks(
            redis_client, cfg.keys, [t for t in ticks[first] if t.ts_event_us >= START_US + 3_000_000]
        )
        assert wait_for(lambda: metric_count(db, first.id) > before, timeout=BLOCK_MS / 1000 + 5), errors
        took = time.monotonic() - published
        assert took < PROMPT_S, f"new metrics of the first pair took {took:.2f} s (block_ms {BLOCK_MS})"
        assert not errors
    finally:
        stop.set()
        worker.stop()  # no new idle wait
        client_id = blocked_idle_wait(redis_client, name)
        if client_id is not None:
            redis_client.client_unblock(client_id)  # end the current 5 s wait now
        thread.join(timeout=BLOCK_MS / 1000 + 5)
        worker.close()
    assert not thread.is_alive()
