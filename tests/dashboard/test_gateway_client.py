"""The dashboard's gateway client and live relay follower against a real gateway on a real socket.

Data goes through the real pipeline first (generated ticks -> Redis -> analytics worker -> PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from services.dashboard.__main__ import main as dashboard_main
from services.dashboard.gateway import (
    Gateway,
    GatewayDown,
    NotAvailable,
    Rejected,
    problems_of,
    prometheus_gauge,
)
from services.dashboard.live import LiveFeed
from shared.instruments import Pair
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.testing.streams import publish_ticks
from tests.dashboard.stack import (
    REPO,
    TOKEN,
    AnalyticsWorker,
    analytics_settings,
    free_socket,
    gateway_settings,
    serve_gateway,
)

SPEC = CointegratedSpec(duration_s=180, seed=4)
PAIR = Pair.parse(f"{SPEC.y_instrument}~{SPEC.x_instrument}")


def run_worker(settings, idle_rounds: int = 5) -> None:
    worker = AnalyticsWorker(analytics_settings(settings), pairs=[PAIR])
    try:
        worker.run_until_idle(idle_rounds=idle_rounds)
    finally:
        worker.close()


@pytest.fixture
def gateway_url(settings, db):
    with serve_gateway(gateway_settings(settings)) as url:
        yield url


@pytest.fixture
def loaded(settings, redis_client, db):
    publish_ticks(redis_client, settings.keys, generate_ticks(SPEC))
    run_worker(settings)
    return PAIR


def test_reads_bars_and_metrics_with_times_in_microseconds(loaded, gateway_url):
    gw = Gateway(gateway_url)
    rows = gw.metrics(PAIR.id, "1s", limit=50)
    assert len(rows) == 50 and [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert all(isinstance(r["ts_us"], int) and r["ts_us"] % 1_000_000 == 0 for r in rows)  # 1 s bucket starts
    bars = gw.bars(SPEC.x_instrument, "1s", max_points=20)
    assert 0 < len(bars) <= 20  # the gateway merged buckets to respect the cap
    later = gw.bars(SPEC.x_instrument, "1s", start_us=bars[-1]["ts_us"], max_points=100_000)
    assert later and later[0]["ts_us"] >= bars[-1]["ts_us"]
    assert [p["id"] for p in gw.pairs()] == [PAIR.id]
    gw.close()


def test_csv_export_is_the_stored_metrics(loaded, gateway_url, db):
    name, content = Gateway(gateway_url).export_csv("metrics", pair=PAIR.id, timeframe="1s")
    lines = content.decode().strip().split("\n")
    assert name.startswith("metrics_") and name.endswith(".csv")
    assert lines[0].startswith("timestamp,ts_us,pair,timeframe,seq")
    stored = db.execute("SELECT count(*) FROM pair_metrics WHERE pair = %s AND timeframe = '1s'", (PAIR.id,)).fetchone()
    assert len(lines) - 1 == stored[0] > 0


def test_errors_are_mapped_to_down_unavailable_and_rejected(settings, gateway_url):
    gw = Gateway(gateway_url, token=TOKEN)
    with pytest.raises(Rejected) as bad:
        gw.bars("not an instrument", "1m")
    assert bad.value.status == 422 and any(p.startswith("instrument:") for p in bad.value.problems)
    with pytest.raises(Rejected) as rule:
        gw.create_rule({"name": "x", "timeframe": "1m", "condition": "|z| >> 2"})
    assert any("condition" in p and "column" in p for p in rule.value.problems)
    with pytest.raises(NotAvailable):
        gw.get("/no-such-endpoint")
    with pytest.raises(Rejected) as auth:
        Gateway(gateway_url).create_rule({"name": "x", "timeframe": "1m", "condition": "|z| > 2"})
    assert auth.value.status == 401
    sock = free_socket()  # bound, never listening: connection refused
    closed = Gateway(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=0.5)
    with pytest.raises(GatewayDown, match="unreachable"):
        closed.health()
    sock.close()


def test_a_slow_gateway_times_out_quickly():
    """A server that accepts and never answers: the call gives up after the short timeout."""
    sock = free_socket()
    sock.listen(1)
    gw = Gateway(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(GatewayDown, match="did not answer within 0.3 s"):
        gw.health()
    assert time.monotonic() - started < 3
    sock.close()


def test_problem_lines_from_every_error_shape():
    assert problems_of({"field": "instrument", "problem": "bad"}) == ["instrument: bad"]
    assert problems_of([{"loc": ["body", "signal", "entry"], "msg": "must be > 0"}]) == ["signal.entry: must be > 0"]
    assert problems_of({"field": "file", "problem": "no valid row", "errors": [{"line": 3, "problem": "price"}]}) == \
        ["file: no valid row", "line 3: price"]
    text = 'pairs_ingest_ticks_per_second{instrument="a.X"} 12.5\npairs_ingest_ticks_per_second{instrument="b.Y"} 0.0\n'
    assert prometheus_gauge(text, "pairs_ingest_ticks_per_second", "instrument") == {"a.X": 12.5, "b.Y": 0.0}


def test_live_feed_follows_new_metrics_without_gaps(settings, redis_client, db, gateway_url):
    first = CointegratedSpec(duration_s=120, seed=4)
    publish_ticks(redis_client, settings.keys, generate_ticks(first))
    run_worker(settings)
    gw = Gateway(gateway_url)
    feed = LiveFeed(gateway_url, pairs=lambda: [PAIR.id])
    feed.start()
    try:
        deadline = time.monotonic() + 15
        while not feed.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed.connected, feed.problem
        history = gw.metrics(PAIR.id, "1s", limit=5000)
        fetched_at = time.time()
        assert feed.since(PAIR.id, "1s", history[-1]["seq"], fetched_at - 3600) is None  # fetched before connect
        # more of the same tape (continuing trade ids and times) -> new metrics on the stream -> relay -> feed
        rest = [t for t in generate_ticks(CointegratedSpec(duration_s=180, seed=4)) if t.ts_event_us > history[-1]["ts_us"] + 2_000_000]
        publish_ticks(redis_client, settings.keys, rest)
        threading.Thread(target=run_worker, args=(settings,), daemon=True).start()
        expected = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = feed.since(PAIR.id, "1s", history[-1]["seq"], fetched_at)
            stored = gw.metrics(PAIR.id, "1s", limit=5000)
            if got and stored[-1]["seq"] == got[-1]["seq"] and len(stored) > len(history):
                expected = [r for r in stored if r["seq"] > history[-1]["seq"]]
                break
            time.sleep(0.2)
        assert expected, "the relay delivered nothing"
        assert [r["seq"] for r in got] == [r["seq"] for r in expected]  # contiguous, nothing missed
        for live, row in zip(got, expected, strict=True):
            assert live["ts_us"] == row["ts_us"] and live["zscore"] == pytest.approx(row["zscore"], rel=1e-12, abs=0)
    finally:
        feed.stop()
        gw.close()


def test_dashboard_command_serves_and_check_reports_it(settings, db, gateway_url, capsys):
    """`python -m services.dashboard` in its own process; `--check` answers 1 before it is up and 0 after."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    args = ["--port", str(port), "--gateway", gateway_url]
    assert dashboard_main(["--check", *args]) == 1
    assert "not answering" in capsys.readouterr().err
    assert dashboard_main(["--check", "--gateway", "ftp://nowhere"]) == 2  # refused before anything runs
    env = dict(os.environ, LOG_JSON="false", LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "services.dashboard", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while dashboard_main(["--check", *args]) != 0:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the dashboard did not come up"
            time.sleep(0.5)
        assert "gateway ok" in capsys.readouterr().out
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "Pairs" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_feed_modes_are_read_from_status_or_feed_name():
    from services.dashboard.app import simulated_feeds
    from services.dashboard.gateway import feed_mode

    assert feed_mode("simulated", {"feed": "simulated", "updated_us": 1}) == "simulated"
    assert feed_mode("live", {"feed": "live", "connections": 2}) == "live"
    assert feed_mode("replay", None) == "replay"
    assert feed_mode("binance", {"mode": "Simulated"}) == "simulated"  # an explicit mode wins over the name
    assert feed_mode("other", {}) == "unknown"
    assert simulated_feeds({"live": {}, "simulated": {}, "x": {"mode": "simulated"}}) == ["simulated", "x"]
