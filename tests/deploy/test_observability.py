"""Prometheus helpers: names as exposed, the exporter over a real socket, stream lag from a real Redis."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared import observability as obs
from tests.conftest import REDIS_URL

NAME_CONSTANTS = [
    obs.TICKS_IN, obs.TICKS_OUT, obs.PUBLISH_LATENCY, obs.STREAM_LAG, obs.STREAM_PENDING, obs.BARS_WRITTEN,
    obs.METRICS_WRITTEN, obs.ALERT_EVALUATIONS, obs.ALERT_FIRINGS, obs.WEBHOOK_OUTCOMES, obs.RECONNECTS,
    obs.GAPS_FILLED, obs.DB_WRITE_LATENCY, obs.DEADLETTERED, obs.TICK_TO_ALERT_LATENCY,
]


def _samples(registry) -> dict[tuple[str, tuple], float]:
    text, _ = obs.render(registry)
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_constant_is_exposed_under_its_exact_name() -> None:
    metrics = obs.ServiceMetrics.create()
    metrics.ticks_in.labels(instrument="binance-spot.BTCUSDT").inc(3)
    metrics.ticks_out.labels(instrument="binance-spot.BTCUSDT").inc(2)
    metrics.publish_latency.observe(0.002)
    metrics.stream_lag.labels(stream="s", group="g").set(7)
    metrics.stream_pending.labels(stream="s", group="g").set(1)
    metrics.bars_written.labels(timeframe="1m").inc(4)
    metrics.metrics_written.labels(timeframe="1m").inc(5)
    metrics.alert_evaluations.inc()
    metrics.alert_firings.labels(pair="a~b").inc()
    metrics.webhook_outcomes.labels(outcome=obs.WEBHOOK_DELIVERED).inc()
    metrics.reconnects.labels(feed="binance-spot").inc()
    metrics.gaps_filled.labels(instrument="binance-spot.BTCUSDT").inc(9)
    metrics.db_write_latency.labels(table="bars").observe(0.01)
    metrics.deadlettered.labels(group="analytics:a~b").inc()
    metrics.tick_to_alert_latency.observe(0.3)
    exposed = {name for name, _ in _samples(metrics.registry)}
    for name in NAME_CONSTANTS:
        # histograms expose name_bucket/_sum/_count; counters and gauges the name itself
        assert name in exposed or f"{name}_count" in exposed, name
    samples = _samples(metrics.registry)
    assert samples[(obs.TICKS_IN, (("instrument", "binance-spot.BTCUSDT"),))] == 3
    assert samples[(obs.GAPS_FILLED, (("instrument", "binance-spot.BTCUSDT"),))] == 9
    assert samples[(f"{obs.PUBLISH_LATENCY}_count", ())] == 1


def test_registries_are_independent() -> None:
    a, b = obs.ServiceMetrics.create(), obs.ServiceMetrics.create()
    a.alert_evaluations.inc(2)
    assert _samples(b.registry)[(obs.ALERT_EVALUATIONS, ())] == 0
    assert _samples(a.registry)[(obs.ALERT_EVALUATIONS, ())] == 2


def test_metrics_server_serves_the_registry_over_http() -> None:
    metrics = obs.ServiceMetrics.create()
    metrics.reconnects.labels(feed="binance-usdm").inc(2)
    server = obs.start_metrics_server(0, metrics.registry, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert f'{obs.RECONNECTS}{{feed="binance-usdm"}} 2.0' in body


def test_metrics_server_rejects_bad_port() -> None:
    with pytest.raises(ValueError, match="metrics port"):
        obs.start_metrics_server(70000)


@pytest.fixture
def client(key_prefix: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(REDIS_URL)
    yield c
    c.close()


def test_group_lag_and_gauges_from_real_stream(client: redis.Redis, key_prefix: str) -> None:
    stream, group = f"{key_prefix}ticks:x", "g1"
    for i in range(10):
        client.xadd(stream, {"data": str(i)})
    client.xgroup_create(stream, group, id="0")
    # deliver 4 entries, ack 1 of them: 6 undelivered, 3 pending
    got = client.xreadgroup(group, "c1", {stream: ">"}, count=4)
    first_id = got[0][1][0][0]
    client.xack(stream, group, first_id)
    assert obs.group_lag(client, stream, group) == (6, 3)
    assert obs.group_lag(client, stream, "missing") is None
    assert obs.group_lag(client, f"{key_prefix}nostream", group) is None

    metrics = obs.ServiceMetrics.create()
    obs.update_stream_gauges(metrics, client, [(stream, group), (stream, "missing")])
    samples = _samples(metrics.registry)
    assert samples[(obs.STREAM_LAG, (("group", group), ("stream", stream)))] == 6
    assert samples[(obs.STREAM_PENDING, (("group", group), ("stream", stream)))] == 3
    assert not any(labels and ("group", "missing") in labels for _, labels in samples)


def test_group_lag_counts_when_redis_cannot_report_it(client: redis.Redis, key_prefix: str) -> None:
    # After an XDEL inside the undelivered range Redis 7 reports lag as nil; the fallback counts.
    stream, group = f"{key_prefix}ticks:y", "g"
    ids = [client.xadd(stream, {"data": str(i)}) for i in range(5)]
    client.xgroup_create(stream, group, id="0")
    client.xreadgroup(group, "c", {stream: ">"}, count=1)
    client.xdel(stream, ids[2])
    assert obs.group_lag(client, stream, group) == (3, 1)
