"""Latest prices and recent ticks come from the tick streams: checked against XRANGE of the same streams."""

from __future__ import annotations

from shared.messages import Tick, from_fields
from tests.api.conftest import PAIR


def _stream_ticks(redis_client, settings, instrument: str) -> list[Tick]:
    return [from_fields(f, Tick) for _, f in redis_client.xrange(settings.keys.ticks(instrument))]


def test_latest_prices_and_recent_ticks_equal_the_streams(client, pipeline, settings, redis_client):
    latest = {row["instrument"]: row for row in client.get("/api/v1/prices/latest").json()["data"]}
    for leg in PAIR.legs:
        last = _stream_ticks(redis_client, settings, leg.id)[-1]
        assert (latest[leg.id]["price"], latest[leg.id]["ts_event_us"]) == (last.price, last.ts_event_us)
    ticks = _stream_ticks(redis_client, settings, PAIR.x.id)
    body = client.get("/api/v1/ticks", params={"instrument": PAIR.x.id, "limit": 50}).json()
    assert body["count"] == 50
    assert [t["trade_id"] for t in body["data"]] == [t.trade_id for t in ticks[-50:]]
    assert [t["price"] for t in body["data"]] == [t.price for t in ticks[-50:]]
