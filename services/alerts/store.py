"""Database access of the alerts worker: rules, states, events (idempotent), delivery bookkeeping.

Multi-row statements (``unnest`` of arrays) keep a batch to a few round trips.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import psycopg

from shared.alerts.machine import RuleState
from shared.alerts.spec import Channel, Rule, build_channels, build_spec
from shared.alerts.tree import RuleError
from shared.messages import AlertEvent
from shared.timeutil import EPOCH, datetime_to_us, us_to_datetime

log = logging.getLogger(__name__)

StateKey = tuple[int, str, str]  # (rule_id, pair, timeframe)


def rule_from_row(row: dict[str, Any]) -> Rule:
    """Build a worker rule from an ``alert_rules`` row (raises ``RuleError`` on a corrupt row)."""
    return Rule(
        id=int(row["id"]),
        name=row["name"],
        pair=row["pair"],
        timeframe=row["timeframe"],
        spec=build_spec(row["kind"], row["spec"], "$.spec"),
        enabled=bool(row["enabled"]),
        cooldown_s=float(row["cooldown_s"]),
        pending_n=int(row["pending_n"]),
        pending_s=float(row["pending_s"]),
        channels=build_channels(row["channels"]),
        version=rule_version(row),
    )


def rule_version(row: dict[str, Any]) -> int:
    """Changes only when what the state machine depends on changes (not on renames or channel edits)."""
    ident = orjson.dumps([row["kind"], row["pair"], row["timeframe"], row["spec"]], option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(ident, digest_size=7).digest(), "big")


async def load_rules(conn: psycopg.AsyncConnection) -> list[Rule]:
    cur = await conn.execute("SELECT * FROM alert_rules ORDER BY id")
    rules = []
    for row in await cur.fetchall():
        try:
            rules.append(rule_from_row(row))
        except RuleError as exc:  # a hand-edited row must not stop every other rule
            log.error("skipping invalid alert rule %s (%s): %s", row["id"], row["name"], exc)
    return rules


async def load_states(conn: psycopg.AsyncConnection) -> dict[StateKey, RuleState]:
    cur = await conn.execute("SELECT rule_id, pair, timeframe, state FROM alert_state")
    out: dict[StateKey, RuleState] = {}
    for r in await cur.fetchall():
        key = (r["rule_id"], r["pair"], r["timeframe"])
        try:
            out[key] = RuleState.from_json(r["state"])
        except (msgspec.ValidationError, TypeError) as exc:  # a corrupt row restarts that series from scratch
            log.error("ignoring unreadable alert state %s: %s", key, exc)
    return out


@dataclass(frozen=True, slots=True)
class NewEvent:
    event: AlertEvent
    channels: tuple[Channel, ...]


async def write_batch(
    conn: psycopg.AsyncConnection,
    events: list[NewEvent],
    states: dict[StateKey, RuleState],
    stream_ids: dict[str, str] | None = None,
) -> set[str]:
    """Insert events (duplicates ignored) and upsert states in the caller's transaction.

    ``stream_ids`` maps dedupe keys to their entry on the alerts stream. Returns the dedupe keys that
    were newly inserted: only those are handed to delivery. Each batch travels as one JSON document
    (``json_to_recordset``): far cheaper than per-column arrays of escaped text.
    """
    stream_ids = stream_ids or {}
    inserted: set[str] = set()
    if events:
        doc = [
            {
                "dedupe_key": e.dedupe_key, "ts_us": e.ts_event_us, "rule_id": e.rule_id, "rule_name": e.rule_name,
                "pair": e.pair, "timeframe": e.timeframe, "kind": e.kind, "message": e.message, "values": e.values,
                "fired_us": e.ts_compute_us, "status": "pending" if n.channels else "none",
                "stream_id": stream_ids.get(e.dedupe_key),
            }
            for n in events
            for e in (n.event,)
        ]
        cur = await conn.execute(
            """
            INSERT INTO alert_events (dedupe_key, ts, rule_id, rule_name, pair, timeframe, kind, message,
                                      "values", fired_at, delivery_status, stream_id)
            SELECT r.dedupe_key, %(epoch)s + r.ts_us * interval '1 microsecond', r.rule_id, r.rule_name, r.pair,
                   r.timeframe, r.kind, r.message, r."values", %(epoch)s + r.fired_us * interval '1 microsecond',
                   r.status, r.stream_id
            FROM json_to_recordset(%(doc)s::json) AS r(dedupe_key text, ts_us bigint, rule_id bigint, rule_name text,
                 pair text, timeframe text, kind text, message text, "values" jsonb, fired_us bigint, status text,
                 stream_id text)
            ON CONFLICT (dedupe_key, ts) DO NOTHING
            RETURNING dedupe_key
            """,
            {"doc": orjson.dumps(doc).decode(), "epoch": EPOCH},
        )
        inserted = {r["dedupe_key"] for r in await cur.fetchall()}
    if states:
        doc = [
            {"rule_id": k[0], "pair": k[1], "timeframe": k[2], "state": st.to_json(), "last_ts_us": st.last_ts_us}
            for k, st in states.items()
        ]
        # Skip rules deleted since the last reload (their state rows are gone with them).
        await conn.execute(
            """
            INSERT INTO alert_state (rule_id, pair, timeframe, state, last_ts, updated_at)
            SELECT u.rule_id, u.pair, u.timeframe, u.state, %(epoch)s + u.last_ts_us * interval '1 microsecond', now()
            FROM json_to_recordset(%(doc)s::json)
                 AS u(rule_id bigint, pair text, timeframe text, state jsonb, last_ts_us bigint)
            WHERE EXISTS (SELECT 1 FROM alert_rules r WHERE r.id = u.rule_id)
            ON CONFLICT (rule_id, pair, timeframe)
            DO UPDATE SET state = excluded.state, last_ts = excluded.last_ts, updated_at = now()
            """,
            {"doc": orjson.dumps(doc).decode(), "epoch": EPOCH},
        )
    return inserted


async def mark_published(conn: psycopg.AsyncConnection, published: list[tuple[AlertEvent, str]]) -> None:
    if not published:
        return
    await conn.execute(
        """
        UPDATE alert_events e SET stream_id = u.stream_id
        FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) AS u(dedupe_key, ts, stream_id)
        WHERE e.dedupe_key = u.dedupe_key AND e.ts = u.ts
        """,
        (
            [e.dedupe_key for e, _ in published],
            [us_to_datetime(e.ts_event_us) for e, _ in published],
            [sid for _, sid in published],
        ),
    )


def event_from_row(row: dict[str, Any]) -> AlertEvent:
    return AlertEvent(
        rule_id=int(row["rule_id"]),
        rule_name=row["rule_name"],
        pair=row["pair"],
        timeframe=row["timeframe"],
        ts_event_us=datetime_to_us(row["ts"]),
        kind=row["kind"],
        message=row["message"],
        values=row["values"],
        dedupe_key=row["dedupe_key"],
        ts_compute_us=datetime_to_us(row["fired_at"]),
    )


async def outbox(conn: psycopg.AsyncConnection, limit: int = 10_000) -> list[tuple[AlertEvent, bool, bool, Any]]:
    """Events left unpublished or undelivered by a crash: (event, needs publish, needs delivery, channels)."""
    cur = await conn.execute(
        """
        SELECT e.*, r.channels AS rule_channels FROM alert_events e
        LEFT JOIN alert_rules r ON r.id = e.rule_id
        WHERE e.stream_id IS NULL OR e.delivery_status = 'pending'
        ORDER BY e.id LIMIT %s
        """,
        (limit,),
    )
    return [
        (event_from_row(r), r["stream_id"] is None, r["delivery_status"] == "pending", r["rule_channels"])
        for r in await cur.fetchall()
    ]


async def set_delivery(
    conn: psycopg.AsyncConnection, event: AlertEvent, status: str, attempts: int, error: str | None
) -> None:
    await conn.execute(
        """
        UPDATE alert_events SET delivery_status = %s, delivery_attempts = delivery_attempts + %s,
               delivered_at = CASE WHEN %s = 'delivered' THEN now() ELSE delivered_at END, delivery_error = %s
        WHERE dedupe_key = %s AND ts = %s
        """,
        (status, attempts, status, error, event.dedupe_key, us_to_datetime(event.ts_event_us)),
    )


async def insert_dead_delivery(
    conn: psycopg.AsyncConnection, event: AlertEvent, channel: Channel, attempts: int, error: str, payload: bytes
) -> None:
    try:
        payload_json = orjson.loads(payload)
    except orjson.JSONDecodeError:
        payload_json = {"raw": payload.decode(errors="replace")}
    await conn.execute(
        """
        INSERT INTO alert_delivery_deadletters (dedupe_key, event_ts, rule_id, channel, attempts, last_error, payload)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        """,
        (
            event.dedupe_key,
            us_to_datetime(event.ts_event_us),
            event.rule_id,
            orjson.dumps(channel.to_json()).decode(),
            attempts,
            error,
            orjson.dumps(payload_json).decode(),
        ),
    )
