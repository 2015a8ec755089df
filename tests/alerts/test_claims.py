"""Stale pending entries of a dead consumer: claimed at start and evaluated, or dead-lettered after N deliveries."""

from __future__ import annotations

import subprocess
import sys

from shared.streams import ALERTS_GROUP

from .conftest import publish, wait_for
from .helpers import PAIR, series


def _ghost_reads(redis_client, settings, times: int) -> None:
    """A consumer that read the entries and died without acking them."""
    stream = settings.keys.metrics(PAIR)
    redis_client.xgroup_create(stream, ALERTS_GROUP, id="0")
    redis_client.xreadgroup(ALERTS_GROUP, "ghost", {stream: ">"})
    for _ in range(times - 1):
        redis_client.xreadgroup(ALERTS_GROUP, "ghost", {stream: "0"})


def test_stale_entries_of_a_dead_consumer_are_claimed_at_start(db, redis_client, alerts_settings, insert_rule,
                                                                start_worker):
    insert_rule("condition", {"trigger": "z > 2"})
    publish(redis_client, alerts_settings, series([0.0, 2.5]))
    _ghost_reads(redis_client, alerts_settings, times=1)
    start_worker(claim_min_idle_ms=0)
    wait_for(lambda: db.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 1, what="claimed metric fired")
    stream = alerts_settings.keys.metrics(PAIR)
    wait_for(lambda: redis_client.xpending(stream, ALERTS_GROUP)["pending"] == 0, what="claimed entries acked")


def test_entries_delivered_too_often_are_dead_lettered(db, redis_client, alerts_settings, insert_rule, start_worker):
    insert_rule("condition", {"trigger": "z > 2"})
    publish(redis_client, alerts_settings, series([0.0, 2.5]))
    _ghost_reads(redis_client, alerts_settings, times=2)  # delivered twice; the claim is the third delivery
    start_worker(claim_min_idle_ms=0, max_deliveries=2)
    dl = alerts_settings.keys.deadletter(ALERTS_GROUP)
    wait_for(lambda: redis_client.xlen(dl) == 2, what="both entries dead-lettered")
    assert all(b"failed 2 deliveries" in f[b"error"] for _, f in redis_client.xrange(dl))
    assert db.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 0


def test_check_command_fails_without_a_live_worker(alerts_settings):
    env = {"REDIS_URL": alerts_settings.redis_dsn, "PAIRS_KEY_PREFIX": alerts_settings.key_prefix, "LOG_JSON": "false"}
    import os

    done = subprocess.run([sys.executable, "-m", "services.cli", "alerts", "--check"], env={**os.environ, **env},
                          capture_output=True, timeout=60)
    assert done.returncode == 1 and b"no live heartbeat" in done.stderr
