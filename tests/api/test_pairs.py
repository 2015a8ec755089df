"""Instruments and pair configuration: CRUD against the table, change notices on pub/sub, token, errors."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.api.conftest import AUTH, PAIR

NEW = {"y": "binance-usdm.SOLUSDT", "x": "binance-usdm.ETHUSDT", "window": 120, "timeframes": ["1m", "1s"],
       "hedge_method": "kalman", "enabled": True}  # fmt: skip
NEW_ID = "binance-usdm.SOLUSDT~binance-usdm.ETHUSDT"


def _next_notice(pubsub, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg is not None:
            return orjson.loads(msg["data"])
    raise AssertionError("no pairs-changed notice published")


@pytest.fixture
def notices(settings, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(settings.keys.pairs_changed_channel)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    yield pubsub
    pubsub.close()


def test_writes_need_the_token(client):
    assert client.post("/api/v1/pairs", json=NEW).status_code == 401
    assert client.post("/api/v1/pairs", json=NEW, headers={"X-API-Token": "wrong"}).status_code == 401
    assert client.patch(f"/api/v1/pairs/{NEW_ID}", json={"window": 10}).status_code == 401
    assert client.delete(f"/api/v1/pairs/{NEW_ID}").status_code == 401
    assert client.post("/api/v1/upload/ticks", files={"file": ("t.csv", b"x")}).status_code == 401
    body = client.post("/api/v1/pairs", json=NEW).json()
    assert body["detail"]["field"] == "X-API-Token"
    assert client.get("/api/v1/pairs").status_code == 200  # reads stay open unless API_PROTECT_READS


def test_create_patch_put_delete_publish_notices_and_match_the_table(client, db, notices):
    created = client.post("/api/v1/pairs", json=NEW, headers=AUTH)
    assert created.status_code == 201, created.text
    notice = _next_notice(notices)
    assert notice["action"] == "created" and notice["pair"] == NEW_ID
    assert notice["config"]["timeframes"] == ["1s", "1m"]  # validated and ordered by size
    row = db.execute('SELECT y, x, "window", timeframes, hedge_method, enabled FROM pairs WHERE id = %s',
                     (NEW_ID,)).fetchone()  # fmt: skip
    assert row == ("binance-usdm.SOLUSDT", "binance-usdm.ETHUSDT", 120, ["1s", "1m"], "kalman", True)
    assert {r[0] for r in db.execute("SELECT id FROM instruments")} >= {NEW["y"], NEW["x"]}
    assert client.post("/api/v1/pairs", json=NEW, headers=AUTH).status_code == 409

    patched = client.patch(f"/api/v1/pairs/{NEW_ID}", json={"window": 600, "enabled": False}, headers=AUTH)
    assert patched.status_code == 200 and patched.json()["config"]["window"] == 600
    notice = _next_notice(notices)
    assert (notice["action"], notice["config"]["window"], notice["config"]["enabled"]) == ("updated", 600, False)
    assert db.execute('SELECT "window", enabled, hedge_method FROM pairs WHERE id = %s', (NEW_ID,)).fetchone() == (
        600, False, "kalman")

    replaced = client.put(f"/api/v1/pairs/{NEW_ID}", json={"hedge_method": "huber"}, headers=AUTH).json()
    assert replaced["config"] == {"id": NEW_ID, "y": NEW["y"], "x": NEW["x"], "window": 300,
                                  "timeframes": ["1s", "1m", "5m"], "hedge_method": "huber", "enabled": True}
    assert _next_notice(notices)["config"]["hedge_method"] == "huber"

    detail = client.get(f"/api/v1/pairs/{NEW_ID}").json()
    assert detail["hedge_method"] == "huber" and detail["owner"] is None
    assert client.delete(f"/api/v1/pairs/{NEW_ID}", headers=AUTH).status_code == 200
    assert _next_notice(notices) == {"action": "deleted", "pair": NEW_ID, "config": None}
    assert db.execute("SELECT count(*) FROM pairs WHERE id = %s", (NEW_ID,)).fetchone()[0] == 0
    assert client.get(f"/api/v1/pairs/{NEW_ID}").status_code == 404
    assert client.delete(f"/api/v1/pairs/{NEW_ID}", headers=AUTH).status_code == 404


def test_pair_detail_names_the_lease_owner(client, settings, redis_client, db):
    client.post("/api/v1/pairs", json=NEW, headers=AUTH)
    redis_client.set(settings.keys.lease(NEW_ID), "worker-7", ex=30)
    assert client.get(f"/api/v1/pairs/{NEW_ID}").json()["owner"] == "worker-7"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"window": 2}, "body.window", "greater than or equal to 3"),
        ({"hedge_method": "median"}, "body.hedge_method", "ols"),
        ({"timeframes": ["7m"]}, "body.timeframes", "unknown timeframe"),
        ({"timeframes": []}, "body.timeframes", "at least 1"),
        ({"y": "not a symbol!"}, "body.y", "symbol"),
        ({"x": NEW["y"]}, "body", "different"),
        ({"colour": "red"}, "body.colour", "Extra inputs"),
    ],
)
def test_invalid_pair_bodies_name_the_field(client, change, field, words):
    r = client.post("/api/v1/pairs", json={**NEW, **change}, headers=AUTH)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field and words in detail["problem"], detail


def test_missing_fields_and_bad_json_name_the_field(client):
    r = client.post("/api/v1/pairs", json={"x": NEW["x"]}, headers=AUTH)
    assert r.json()["detail"] == {"field": "body.y", "problem": "is required"}
    r = client.post("/api/v1/pairs", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]["field"].startswith("body")
    r = client.get("/api/v1/bars", params={"instrument": "sim.BTCUSDT", "limit": "many"})
    assert r.json()["detail"]["field"] == "limit"


def test_instrument_detail_matches_stored_bars(client, pipeline, db):
    inst = PAIR.x.id
    body = client.get(f"/api/v1/instruments/{inst}").json()
    expected = {tf: (n, first, last) for tf, n, first, last in db.execute(
        "SELECT timeframe, count(*), min(ts), max(ts) FROM bars WHERE instrument = %s GROUP BY timeframe", (inst,))}
    got = {c["timeframe"]: (c["count"], c["first"], c["last"]) for c in body["bars"]}
    assert {tf: v[0] for tf, v in got.items()} == {tf: v[0] for tf, v in expected.items()}
    assert got["1s"][1].startswith(expected["1s"][1].strftime("%Y-%m-%dT%H:%M:%S"))
    assert body["pairs"] == [PAIR.id]
    assert body["last_price"] is not None
    assert client.get("/api/v1/instruments/sim.NOPE").status_code == 404
    assert client.get("/api/v1/instruments/bad id!").json()["detail"]["field"] == "instrument"
