"""Ops endpoints over a pipeline run: /metrics (Prometheus text) and /api/v1/system, checked against Redis."""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from services.api.app import create_app
from shared.observability import group_lag
from shared.streams import Keys
from tests.api.conftest import PAIR, api_settings


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_system_status_reports_feeds_workers_leases_lag_and_dead_letters(client, pipeline, settings, redis_client):
    keys = settings.keys
    redis_client.set(keys.feed_status("replay"), orjson.dumps({"feed": "replay", "speed": 10}), ex=30)
    redis_client.set(keys.heartbeat("analytics", "w1"), orjson.dumps({"instance": "w1", "ts": time.time() - 2}), ex=15)
    redis_client.set(keys.lease(PAIR.id), "w1", ex=30)
    redis_client.xadd(keys.deadletter(Keys.analytics_group(PAIR.id)), {"error": "poison"})
    redis_client.xadd(keys.ticks(PAIR.x.id), {"data": b"{}"})  # one entry the pair's group has not read yet
    body = client.get("/api/v1/system").json()
    assert body["feeds"] == {"replay": {"feed": "replay", "speed": 10}}
    (worker,) = body["workers"]
    assert (worker["service"], worker["instance"]) == ("analytics", "w1") and 1.5 < worker["age_s"] < 30
    assert body["leases"] == {PAIR.id: "w1"} and body["pairs_unowned"] == []
    assert body["deadletters"] == {Keys.analytics_group(PAIR.id): 1}
    lag = {(g["stream"], g["group"]): (g["lag"], g["pending"]) for g in body["lag"]}
    group = Keys.analytics_group(PAIR.id)
    for leg in PAIR.legs:
        stream = keys.ticks(leg.id)
        assert lag[(stream, group)] == group_lag(redis_client, stream, group)
    assert lag[(keys.ticks(PAIR.x.id), group)][0] == 1


def test_prometheus_metrics_expose_latency_lag_heartbeats_and_ingest_rate(client, pipeline, settings, redis_client):
    keys = settings.keys
    redis_client.set(keys.heartbeat("ingest", "i1"), orjson.dumps({"updated_us": int(time.time() * 1e6)}), ex=15)
    client.get("/api/v1/snapshot")
    client.get("/api/v1/bars", params={"instrument": "bad id!"})
    first = client.get("/metrics")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
    redis_client.xadd(keys.ticks(PAIR.y.id), {"data": b"{}"})
    redis_client.xadd(keys.ticks(PAIR.y.id), {"data": b"{}"})
    samples = _samples(client.get("/metrics").text)
    count = "pairs_api_request_duration_seconds_count"
    assert samples[(count, (("method", "GET"), ("route", "/api/v1/snapshot"), ("status", "200")))] == 1
    assert samples[(count, (("method", "GET"), ("route", "/api/v1/bars"), ("status", "422")))] == 1
    group = Keys.analytics_group(PAIR.id)
    stream = keys.ticks(PAIR.y.id)
    assert samples[("pairs_stream_lag_entries", (("group", group), ("stream", stream)))] == 2
    assert samples[("pairs_stream_pending_entries", (("group", group), ("stream", stream)))] == 0
    age = samples[("pairs_worker_heartbeat_age_seconds", (("instance", "i1"), ("service", "ingest")))]
    assert 0 <= age < 30
    rate = samples[("pairs_ingest_ticks_per_second", (("instrument", PAIR.y.id),))]
    assert rate > 0  # two entries added between the two scrapes
    assert ("pairs_ingest_ticks_per_second", (("instrument", PAIR.x.id),)) in samples  # none added: rate 0
    assert samples[("pairs_ingest_ticks_per_second", (("instrument", PAIR.x.id),))] == 0


def test_cors_allows_only_listed_origins_and_refuses_a_wildcard(settings, db):
    with pytest.raises(ValidationError, match="explicitly"):
        api_settings(settings, cors_origins=["*"])
    app = create_app(api_settings(settings, cors_origins=["https://desk.example.com"]))
    with TestClient(app) as c:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Token"}
        ok = c.options("/api/v1/pairs", headers={"Origin": "https://desk.example.com", **preflight})
        assert ok.headers["access-control-allow-origin"] == "https://desk.example.com"
        assert ok.headers["access-control-allow-credentials"] == "true"
        other = c.options("/api/v1/pairs", headers={"Origin": "https://evil.example.com", **preflight})
        assert "access-control-allow-origin" not in other.headers
