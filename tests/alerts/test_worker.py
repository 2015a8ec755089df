"""The alerts worker against real Redis, PostgreSQL and a local HTTP receiver (in-process worker)."""

from __future__ import annotations

import hashlib
import hmac
import logging

import orjson
import psycopg
import redis

from services.alerts.__main__ import check
from services.alerts.payloads import EVENT_ID_HEADER, SIGNATURE_HEADER
from shared.messages import AlertEvent, from_fields
from shared.streams import ALERTS_GROUP

from .conftest import publish, wait_for
from .helpers import PAIR, T0_US, series


def _events(db: psycopg.Connection) -> list[tuple]:
    return db.execute(
        "SELECT rule_id, pair, kind, ts, delivery_status, stream_id FROM alert_events ORDER BY ts, kind"
    ).fetchall()


def _stream_events(client: redis.Redis, settings) -> list[AlertEvent]:
    return [from_fields(f, AlertEvent) for _, f in client.xrange(settings.keys.alerts)]


def test_z_over_two_fires_once_is_published_and_delivered_signed(
    db, redis_client, alerts_settings, insert_rule, receiver, start_worker
):
    rule_id = insert_rule(
        "condition", {"trigger": "|z| > 2 and corr > 0.7", "clear": "|z| < 1"},
        name="wide spread", channels=[{"format": "json", "url": receiver.url}],
    )
    # an unrelated rule on another timeframe must not fire
    insert_rule("condition", {"trigger": "|z| > 0"}, timeframe="1m")
    worker = start_worker()
    # |z| over 2 at seq 2 (episode starts), flaps 1.9..2.4 without reaching the clear level 1,
    # clears at seq 6 (0.5), and a new episode starts at seq 7 (-2.5) -> triggers at seq 2 and 7.
    publish(redis_client, alerts_settings, series([0.0, 1.5, 2.3, 1.9, 2.4, 1.2, 0.5, -2.5, -2.1]))
    wait_for(lambda: len(receiver.requests) >= 2, what="two webhook deliveries")
    wait_for(lambda: all(r[4] == "delivered" for r in _events(db)), what="delivery status recorded")

    rows = _events(db)
    assert [(r[0], r[1], r[2]) for r in rows] == [(rule_id, PAIR, "trigger")] * 2
    assert [r[3].timestamp() * 1e6 for r in rows] == [T0_US + 2_000_000, T0_US + 7_000_000]
    assert all(r[5] is not None for r in rows)  # published to the alerts stream

    on_stream = _stream_events(redis_client, alerts_settings)
    assert sorted(e.dedupe_key for e in on_stream) == sorted(
        f"{rule_id}:{PAIR}:1s:trigger:{T0_US + s * 1_000_000}" for s in (2, 7)
    )
    # each webhook body is the event, signed with HMAC-SHA256 over the exact body (oracle: hmac module)
    assert len(receiver.requests) == 2
    for _, headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(b"global-secret", body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == expected
        assert headers[EVENT_ID_HEADER] == orjson.loads(body)["dedupe_key"]
    assert {b["values"]["zscore"] for b in receiver.bodies()} == {2.3, -2.5}
    worker.stop()
    # the metric entries were acked: nothing pending in the group
    pending = redis_client.xpending(alerts_settings.keys.metrics(PAIR), ALERTS_GROUP)
    assert pending["pending"] == 0


def test_failing_webhook_is_retried_then_dead_lettered(db, redis_client, alerts_settings, insert_rule, receiver,
                                                       start_worker):
    receiver.status = 503
    rule_id = insert_rule("condition", {"trigger": "z > 2"}, channels=[{"format": "slack", "url": receiver.url}])
    start_worker()
    publish(redis_client, alerts_settings, series([0.0, 2.5]))
    wait_for(lambda: db.execute("SELECT count(*) FROM alert_delivery_deadletters").fetchone()[0] == 1,
             what="a delivery dead letter")
    assert len(receiver.requests) == alerts_settings.webhook_max_attempts == 3
    assert {b["text"].split("]")[0] for b in receiver.bodies()} == {"[trigger"}  # slack-shaped body
    dead = db.execute("SELECT rule_id, attempts, last_error FROM alert_delivery_deadletters").fetchone()
    assert dead == (rule_id, 3, "HTTP 503")
    wait_for(lambda: db.execute("SELECT delivery_status FROM alert_events").fetchone()[0] == "failed",
             what="event marked failed")


def test_permanent_rejection_is_not_retried(db, redis_client, alerts_settings, insert_rule, receiver, start_worker):
    receiver.status = 404
    insert_rule("condition", {"trigger": "z > 2"}, channels=[{"format": "json", "url": receiver.url}])
    start_worker()
    publish(redis_client, alerts_settings, series([0.0, 2.5]))
    wait_for(lambda: db.execute("SELECT count(*) FROM alert_delivery_deadletters").fetchone()[0] == 1,
             what="a delivery dead letter")
    assert len(receiver.requests) == 1


def test_undecodable_metric_goes_to_the_dead_letter_stream(db, redis_client, alerts_settings, insert_rule,
                                                           start_worker):
    insert_rule("condition", {"trigger": "z > 2"})
    publish(redis_client, alerts_settings, series([0.0]))  # the stream exists before the worker starts
    stream = alerts_settings.keys.metrics(PAIR)
    bad_id = redis_client.xadd(stream, {"data": b'{"type":"metric","pair":1}'}).decode()
    start_worker()
    publish(redis_client, alerts_settings, series([0.0, 2.5])[1:])
    dl = alerts_settings.keys.deadletter(ALERTS_GROUP)
    wait_for(lambda: redis_client.xlen(dl) == 1, what="dead-lettered entry")
    wait_for(lambda: db.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 1, what="the good metric fired")
    (_, fields), = redis_client.xrange(dl)
    assert fields[b"entry_id"].decode() == bad_id and b"bad Metric" in fields[b"error"]
    wait_for(lambda: redis_client.xpending(stream, ALERTS_GROUP)["pending"] == 0, what="everything acked")


def test_rule_changes_reach_the_running_worker(db, redis_client, alerts_settings, insert_rule, start_worker):
    worker = start_worker()
    wait_for(lambda: check(alerts_settings, "test-alerts") == 0, what="heartbeat")
    publish(redis_client, alerts_settings, series([0.0, 2.5]))  # no rule yet: nothing fires
    wait_for(lambda: worker.worker.counts["metrics"] == 2, what="metrics consumed")
    insert_rule("condition", {"trigger": "z > 2"}, pair=PAIR)
    redis_client.publish(alerts_settings.keys.alert_rules_changed_channel, b"changed")
    wait_for(lambda: len(worker.worker.evaluator.rules) == 1, what="rule reload on notice")
    publish(redis_client, alerts_settings, [m for m in series([0.0, 0.0, 0.0, 2.5])[2:]])
    wait_for(lambda: db.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 1, what="new rule fires")
    assert db.execute("SELECT ts FROM alert_events").fetchone()[0].timestamp() * 1e6 == T0_US + 3_000_000
    worker.stop()
    assert check(alerts_settings, "test-alerts") == 1  # heartbeat removed on a clean stop


def test_full_delivery_queue_never_blocks_and_outbox_delivers_each_event_once(
    db, redis_client, alerts_settings, insert_rule, receiver, start_worker, caplog
):
    caplog.set_level(logging.WARNING, logger="services.alerts.service")
    # five rules fire on the same metric; a queue of one takes the first, the outbox scan the rest
    for i in range(5):
        insert_rule("condition", {"trigger": "z > 2"}, name=f"r{i}", channels=[{"format": "json", "url": receiver.url}])
    worker = start_worker(delivery_queue_size=1, delivery_concurrency=1, outbox_interval_s=0.2)
    publish(redis_client, alerts_settings, series([0.0, 2.5]))
    wait_for(lambda: db.execute("SELECT count(*) FROM alert_events WHERE delivery_status = 'delivered'"
                                ).fetchone()[0] == 5, what="all five delivered")
    worker.stop()
    ids = [h[EVENT_ID_HEADER] for _, h, _ in receiver.requests]
    assert len(ids) == len(set(ids)) == 5
    assert "delivery queue full: 4 events left for the outbox scan" in caplog.text


def test_a_deleted_metric_stream_does_not_stop_the_others(db, redis_client, alerts_settings, insert_rule,
                                                          start_worker):
    other = "binance-usdm.SOLUSDT~binance-usdm.BNBUSDT"
    insert_rule("condition", {"trigger": "z > 2"})
    worker = start_worker()
    publish(redis_client, alerts_settings, series([0.0]) + series([0.0], pair=other))
    wait_for(lambda: worker.worker.counts["metrics"] == 2, what="both streams consumed")
    redis_client.delete(alerts_settings.keys.metrics(PAIR))  # the pair was removed
    publish(redis_client, alerts_settings, series([0.0, 2.5], pair=other)[1:])
    wait_for(lambda: db.execute("SELECT pair FROM alert_events").fetchall() == [(other,)], what="other pair fires")
    assert alerts_settings.keys.metrics(PAIR) not in worker.worker.consumer.streams
