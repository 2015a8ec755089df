"""Alerts api against the test database and Redis: CRUD, validation messages, token, events, dead letters."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.api.settings import ApiSettings

from .helpers import PAIR

TOKEN = "s3cret-token"
AUTH = {"X-API-Token": TOKEN}
RULE = {
    "name": "wide spread",
    "pair": "binance-spot.ETHUSDT~binance-spot.BTCUSDT",
    "timeframe": "1m",
    "kind": "condition",
    "condition": "|z| > 2 AND corr > 0.7",
    "clear": "abs(z) < 1.5",
    "cooldown_s": 300,
    "channels": [{"format": "json", "url": "https://hooks.example.com/pairs", "secret_ref": "HOOK_SECRET"}],
}


def _app(settings: ApiSettings) -> FastAPI:
    from services.api.app import create_app

    try:
        return create_app(settings)
    except ModuleNotFoundError as exc:
        # The gateway's other routers are written in parallel; until they land, mount the alerts router
        # on an app with the same lifespan wiring (pool + redis) so these tests still hit real services.
        if not (exc.name or "").startswith("services.api.routes."):
            raise
        from contextlib import asynccontextmanager

        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        from services.api.routes.alerts import router
        from shared.redis_client import connect_async

        @asynccontextmanager
        async def lifespan(app: FastAPI):
            app.state.pool = AsyncConnectionPool(settings.database_dsn, min_size=1, max_size=2, open=False,
                                                 kwargs={"autocommit": True, "row_factory": dict_row})
            await app.state.pool.open()
            app.state.redis = connect_async(settings)
            yield
            await app.state.redis.aclose()
            await app.state.pool.close()

        app = FastAPI(lifespan=lifespan)
        app.state.settings = settings
        app.include_router(router)
        return app


@pytest.fixture
async def client(db, settings) -> AsyncIterator[httpx.AsyncClient]:
    api_settings = ApiSettings(REDIS_URL=settings.redis_dsn, DATABASE_URL=settings.database_dsn,
                               PAIRS_KEY_PREFIX=settings.key_prefix, token=TOKEN)
    app = _app(api_settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
            yield c


async def test_create_get_list_rule_canonicalizes_and_stores_the_tree(client, redis_client, settings):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(settings.keys.alert_rules_changed_channel)
    pubsub.get_message(timeout=1)  # subscribe confirmation
    r = await client.post("/api/v1/alerts/rules", json=RULE, headers=AUTH)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["expression"] == "|zscore| > 2 and correlation > 0.7 ; clear when |zscore| < 1.5"
    assert rule["spec"]["trigger"] == {"all": [{"field": "zscore", "abs": True, "op": ">", "value": 2.0},
                                               {"field": "correlation", "op": ">", "value": 0.7}]}
    assert rule["pair"] == PAIR and rule["enabled"] is True and rule["cooldown_s"] == 300
    notice = pubsub.get_message(timeout=2)
    assert notice is not None and orjson.loads(notice["data"]) == {"rule_id": rule["id"], "op": "create"}
    pubsub.close()

    assert (await client.get(f"/api/v1/alerts/rules/{rule['id']}")).json() == rule
    listed = (await client.get("/api/v1/alerts/rules", params={"pair": "ETHUSDT~BTCUSDT"})).json()  # canonicalized
    assert listed["count"] == 1 and listed["data"] == [rule]
    assert (await client.get("/api/v1/alerts/rules", params={"enabled": False})).json()["count"] == 0
    assert (await client.get("/api/v1/alerts/rules/999999")).status_code == 404


async def test_writes_require_the_token(client):
    assert (await client.post("/api/v1/alerts/rules", json=RULE)).status_code == 401
    r = await client.post("/api/v1/alerts/rules", json=RULE, headers={"X-API-Token": "wrong"})
    assert r.status_code == 401 and r.json()["detail"]["field"] == "X-API-Token"
    rule_id = (await client.post("/api/v1/alerts/rules", json=RULE, headers=AUTH)).json()["id"]
    for method, path in [("delete", f"/rules/{rule_id}"), ("post", f"/rules/{rule_id}/disable"),
                         ("patch", f"/rules/{rule_id}"), ("put", f"/rules/{rule_id}")]:
        kwargs = {"json": RULE} if method in ("patch", "put") else {}
        assert (await client.request(method, "/api/v1/alerts" + path, **kwargs)).status_code == 401, path
    assert (await client.get("/api/v1/alerts/rules")).status_code == 200  # reads stay open (protect_reads off)


INVALID = [
    # (changes to RULE, loc, column or None, words in msg)
    ({"condition": "|z| > "}, ["body", "condition"], 7, "expected a number"),
    ({"condition": "z > 1 and zz < 2"}, ["body", "condition"], 11, "unknown field 'zz'"),
    ({"clear": "z <> 1"}, ["body", "clear"], 4, "expected a number"),
    ({"condition": {"all": [{"field": "z", "op": ">", "value": 2}, {"field": "nope", "op": ">", "value": 1}]}},
     ["body", "condition", "all", 1, "field"], None, "unknown field"),
    ({"pair": "ETHUSDT"}, ["body", "pair"], None, "Y~X"),
    ({"timeframe": "2m"}, ["body", "timeframe"], None, "unknown timeframe"),
    ({"kind": "signal", "condition": None, "clear": None, "signal": {"entry": 2, "exit": 3}},
     ["body", "signal", "exit"], None, "exit < entry"),
    ({"kind": "signal", "condition": None, "clear": None, "signal": {"entry": 2, "exit": 0.5, "gate": "corr >"}},
     ["body", "signal", "gate"], 7, "expected a number"),
    ({"channels": [{"format": "json"}]}, ["body", "channels", 0, "url"], None, "needs a url"),
    ({"condition": None}, ["body", "condition"], None, "needs a condition"),
    ({"cooldown_s": -1}, ["body", "cooldown_s"], None, "greater than or equal to 0"),
]


@pytest.mark.parametrize(("changes", "loc", "column", "words"), INVALID)
async def test_invalid_rules_get_422_naming_field_problem_and_column(client, changes, loc, column, words):
    r = await client.post("/api/v1/alerts/rules", json={**RULE, **changes}, headers=AUTH)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == loc
    assert words in error["msg"]
    if column is not None:
        assert error["ctx"]["position"] == column
    assert (await client.get("/api/v1/alerts/rules")).json()["count"] == 0


async def test_validate_endpoint_previews_without_saving(client):
    r = await client.post("/api/v1/alerts/rules/validate", json={**RULE, "condition": "z crosses above 2"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["expression"].startswith("zscore crosses above 2")
    assert (await client.get("/api/v1/alerts/rules")).json()["count"] == 0


async def test_update_patch_enable_disable_delete(client, db):
    created = (await client.post("/api/v1/alerts/rules", json=RULE, headers=AUTH)).json()
    url = f"/api/v1/alerts/rules/{created['id']}"
    time.sleep(0.01)
    patched = (await client.patch(url, json={"cooldown_s": 60, "name": "renamed"}, headers=AUTH)).json()
    assert (patched["cooldown_s"], patched["name"], patched["expression"]) == (60, "renamed", created["expression"])
    assert patched["updated_at"] > created["updated_at"]
    bad = await client.patch(url, json={"condition": "z >> 2"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "condition"]
    switched = await client.patch(url, json={"kind": "signal", "signal": {"entry": 2, "exit": 0.5, "stop": 4}},
                            headers=AUTH)
    assert switched.status_code == 200, switched.text
    assert switched.json()["spec"] == {"field": "zscore", "entry": 2.0, "exit": 0.5, "stop": 4.0, "gate": None}
    replaced = (await client.put(url, json={**RULE, "name": "again", "pair": None}, headers=AUTH)).json()
    assert replaced["kind"] == "condition" and replaced["pair"] is None and replaced["name"] == "again"
    assert (await client.post(url + "/disable", headers=AUTH)).json()["enabled"] is False
    assert (await client.get("/api/v1/alerts/rules", params={"enabled": True})).json()["count"] == 0
    assert (await client.post(url + "/enable", headers=AUTH)).json()["enabled"] is True
    assert (await client.delete(url, headers=AUTH)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url, headers=AUTH)).status_code == 404
    assert (await client.put("/api/v1/alerts/rules/424242", json=RULE, headers=AUTH)).status_code == 404


def _insert_event(db, rule_id: int, pair: str, ts: datetime, kind: str = "trigger") -> None:
    db.execute(
        """INSERT INTO alert_events (dedupe_key, ts, rule_id, rule_name, pair, timeframe, kind, message, "values",
                                     fired_at, delivery_status)
           VALUES (%s, %s, %s, 'r', %s, '1m', %s, 'm', '{"zscore": 2.5}', now(), 'none')""",
        (f"{rule_id}:{pair}:1m:{kind}:{ts.timestamp()}", ts, rule_id, pair, kind),
    )


async def test_events_filter_paginate_and_history(client, db):
    rule_id = (await client.post("/api/v1/alerts/rules", json=RULE, headers=AUTH)).json()["id"]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):
        _insert_event(db, rule_id, PAIR, t0 + timedelta(minutes=i))
    _insert_event(db, rule_id + 1000, "sim.AAA~sim.BBB", t0)
    page = (await client.get("/api/v1/alerts/events", params={"rule_id": rule_id, "limit": 2, "offset": 1})).json()
    assert page["count"] == 5
    # newest first: offset 1 skips minute 4, then minutes 3 and 2
    assert [datetime.fromisoformat(e["ts"]) for e in page["data"]] == [t0 + timedelta(minutes=m) for m in (3, 2)]
    ranged = (await client.get("/api/v1/alerts/events", params={"start": (t0 + timedelta(minutes=1)).isoformat(),
                                                          "end": (t0 + timedelta(minutes=3)).isoformat()})).json()
    assert ranged["count"] == 2
    assert (await client.get("/api/v1/alerts/events", params={"pair": "sim.AAA~sim.BBB"})).json()["count"] == 1
    history = (await client.get(f"/api/v1/alerts/rules/{rule_id}/events")).json()
    assert history["count"] == 5 and {e["rule_id"] for e in history["data"]} == {rule_id}
    assert (await client.get("/api/v1/alerts/events", params={"limit": 0})).status_code == 422
    bad_pair = await client.get("/api/v1/alerts/events", params={"pair": "nonsense"})
    assert bad_pair.status_code == 422 and bad_pair.json()["detail"]["field"] == "pair"


async def test_dead_deliveries_listed(client, db):
    db.execute(
        """INSERT INTO alert_delivery_deadletters (dedupe_key, event_ts, rule_id, channel, attempts, last_error, payload)
           VALUES ('k', now(), 7, '{"format": "json", "url": "http://x/"}', 5, 'HTTP 500', '{"a": 1}')"""
    )
    dead = (await client.get("/api/v1/alerts/deliveries/dead", params={"rule_id": 7})).json()
    assert dead["count"] == 1 and dead["data"][0]["last_error"] == "HTTP 500" and dead["data"][0]["attempts"] == 5
    assert (await client.get("/api/v1/alerts/deliveries/dead", params={"rule_id": 8})).json()["count"] == 0


async def test_openapi_documents_the_alert_routes_with_examples(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/api/v1/alerts/rules", "/api/v1/alerts/rules/{rule_id}", "/api/v1/alerts/rules/{rule_id}/enable",
                 "/api/v1/alerts/events", "/api/v1/alerts/rules/{rule_id}/events", "/api/v1/alerts/deliveries/dead"):
        assert path in paths, path
    assert set(paths["/api/v1/alerts/rules/{rule_id}"]) == {"get", "put", "patch", "delete"}
    rule_in = spec["components"]["schemas"]["RuleIn"]
    assert rule_in["examples"][0]["condition"] == "|z| > 2 and corr > 0.7"
