"""Core gateway routes over rows the real pipeline stored (generated ticks -> Redis -> worker -> PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.instruments import Pair
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.testing.streams import publish_ticks
from tests.pipeline.helpers import analytics_settings, run_worker_until_idle, stored_bars, stored_metrics

SPEC = CointegratedSpec(duration_s=240, seed=21)
PAIR = Pair.parse(f"{SPEC.y_instrument}~{SPEC.x_instrument}")


@pytest.fixture
def client(settings, redis_client, db):
    publish_ticks(redis_client, settings.keys, generate_ticks(SPEC))
    run_worker_until_idle(analytics_settings(settings, window=30, timeframes=["1s", "1m"]), [PAIR])
    api = ApiSettings(REDIS_URL=settings.redis_dsn, DATABASE_URL=settings.database_dsn, PAIRS_KEY_PREFIX=settings.key_prefix)
    with TestClient(create_app(api)) as c:
        yield c


def test_health_and_ready(client):
    assert client.get("/health").json() == {"status": "ok"}
    body = client.get("/ready").json()
    assert body["status"] == "ready", body


def test_bars_equal_stored_rows_and_downsample_keeps_ohlc(client, db):
    stored = stored_bars(db, PAIR.x.id, "1s")
    body = client.get("/api/v1/bars", params={"instrument": PAIR.x.id, "timeframe": "1s", "limit": 100000}).json()
    assert body["count"] == len(stored) and not body["downsampled"]
    assert [b["close"] for b in body["data"]] == stored.close.tolist()
    small = client.get(
        "/api/v1/bars", params={"instrument": PAIR.x.id, "timeframe": "1s", "limit": 100000, "max_points": 20}
    ).json()
    assert small["downsampled"] and small["count"] <= 20
    assert small["data"][0]["open"] == stored.open.iloc[0] and small["data"][-1]["close"] == stored.close.iloc[-1]
    assert max(b["high"] for b in small["data"]) == stored.high.max()
    assert sum(b["trades"] for b in small["data"]) == stored.trades.sum()


def test_metrics_history_and_snapshot(client, db):
    stored = stored_metrics(db, PAIR.id, "1s")
    body = client.get("/api/v1/metrics", params={"pair": PAIR.id, "timeframe": "1s", "limit": 100000}).json()
    assert body["count"] == len(stored)
    assert [m["zscore"] for m in body["data"]] == [None if v != v else v for v in stored.zscore.tolist()]
    snap = client.get("/api/v1/snapshot").json()
    latest = {(row["pair"], row["timeframe"]): row for row in snap["data"]}
    assert latest[(PAIR.id, "1s")]["seq"] == int(stored.seq.max())
    assert client.get("/api/v1/pairs").json()["data"][0]["id"] == PAIR.id


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/bars", {"instrument": "not a symbol!", "timeframe": "1m"}, "instrument"),
        ("/api/v1/bars", {"instrument": "sim.BTCUSDT", "timeframe": "7m"}, "timeframe"),
        ("/api/v1/bars", {"instrument": "sim.BTCUSDT", "from": "2024-01-02", "to": "2024-01-01"}, "to"),
        ("/api/v1/metrics", {"pair": "ETHUSDT"}, "pair"),
    ],
)
def test_bad_parameters_answer_422_naming_the_field(client, path, params, field):
    resp = client.get(path, params=params)
    assert resp.status_code == 422
    assert resp.json()["detail"]["field"] == field
