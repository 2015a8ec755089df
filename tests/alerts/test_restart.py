"""Kill -9 the alerts worker between two batches: the events are exactly the expected ones, once each."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import orjson
import pytest

from shared.messages import AlertEvent, from_fields
from shared.streams import ALERTS_GROUP

from .conftest import alerts_env, publish, wait_for
from .helpers import PAIR, T0_US, series


def _spawn(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.alerts"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[str, float]:
    """Prometheus text exposition parsed into {sample name with labels: value}."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _heartbeat(client, settings) -> dict | None:
    raw = client.get(settings.keys.heartbeat("alerts", settings.instance))
    return None if raw is None else orjson.loads(raw)


@pytest.mark.slow
def test_events_exact_and_delivered_once_across_a_sigkill(db, redis_client, alerts_settings, insert_rule, receiver):
    hook = [{"format": "json", "url": receiver.url}]
    a = insert_rule("signal", {"entry": 2, "exit": 0.5}, name="signal", channels=hook)
    b = insert_rule("condition", {"trigger": "|z| > 2", "clear": "|z| < 1", "notify_clear": True},
                    name="hysteresis", channels=hook)
    c = insert_rule("condition", {"trigger": "z crosses below 1"}, name="cross", channels=hook)
    zs = [0.0, 1.0, 2.5, 1.5, 0.8, 0.3, -1.5, -2.4]
    metrics = series(zs)
    # Hand-derived from the rule definitions:
    #   signal (entry 2, exit 0.5): entry_short at 2 (1.0 -> 2.5), exit at 5 (0.3 <= 0.5), entry_long at 7 (-1.5 -> -2.4)
    #   hysteresis: trigger at 2, clear at 4 (|0.8| < 1), trigger at 7
    #   cross: z crosses below 1 at 4 (1.5 -> 0.8): the 1.5 was seen before the kill, so it comes from saved state
    expected = sorted([
        (a, "entry_short", 2), (a, "exit", 5), (a, "entry_long", 7),
        (b, "trigger", 2), (b, "clear", 4), (b, "trigger", 7),
        (c, "trigger", 4),
    ])
    env = alerts_env(alerts_settings)
    proc = _spawn(env)
    try:
        publish(redis_client, alerts_settings, metrics[:4])
        wait_for(lambda: len(receiver.requests) == 2, timeout_s=30, what="first batch delivered")
        wait_for(lambda: db.execute("SELECT count(*) FROM alert_events WHERE delivery_status = 'delivered'"
                                    ).fetchone()[0] == 2, what="first deliveries recorded")
        wait_for(lambda: redis_client.xpending(alerts_settings.keys.metrics(PAIR), ALERTS_GROUP)["pending"] == 0,
                 what="first batch acked")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        publish(redis_client, alerts_settings, metrics[4:])  # arrives while the worker is down
        port = _free_port()
        proc = _spawn({**env, "ALERTS_PROMETHEUS_PORT": str(port)})
        wait_for(lambda: len(receiver.requests) == len(expected), timeout_s=30, what="all deliveries")
        # redelivery of already-processed metrics must not fire anything again
        publish(redis_client, alerts_settings, [metrics[2], metrics[4], metrics[7]])
        wait_for(lambda: (_heartbeat(redis_client, alerts_settings) or {}).get("metrics") == 4 + 3,
                 timeout_s=30, what="restarted worker consumed batch two and the repeats")
        counters = _scrape(port)
        # after the restart: 4 new metrics x 3 rules evaluated (the 3 repeats are skipped, not evaluated),
        # and the 5 firings of seqs 4..7 listed above
        assert counters["pairs_alerts_evaluations_total"] == 12
        assert sum(v for k, v in counters.items() if k.startswith("pairs_alerts_firings_total{")) == 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read().decode()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    rows = db.execute("SELECT rule_id, kind, ts, delivery_status FROM alert_events").fetchall()
    got = sorted((r[0], r[1], round((r[2].timestamp() * 1e6 - T0_US) / 1e6)) for r in rows)
    assert got == expected
    assert {r[3] for r in rows} == {"delivered"}
    on_stream = [from_fields(f, AlertEvent) for _, f in redis_client.xrange(alerts_settings.keys.alerts)]
    assert sorted((e.rule_id, e.kind, (e.ts_event_us - T0_US) // 1_000_000) for e in on_stream) == expected
    ids = [h["X-Pairs-Alert-Id"] for _, h, _ in receiver.requests]
    assert len(ids) == len(set(ids)) == len(expected)
    # graceful stop: every metric acked, heartbeat removed
    assert redis_client.xpending(alerts_settings.keys.metrics(PAIR), ALERTS_GROUP)["pending"] == 0
    assert _heartbeat(redis_client, alerts_settings) is None
