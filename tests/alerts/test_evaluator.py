"""Evaluator: rule matching by pair/timeframe, per-pair state for all-pairs rules, batch overlay, commit."""

from __future__ import annotations

from dataclasses import replace

import orjson

from services.alerts.evaluator import Evaluator
from services.alerts.payloads import render, signature
from shared.alerts.spec import Channel
from shared.messages import AlertEvent

from .helpers import PAIR, metric, rule

OTHER = "binance-usdm.SOLUSDT~binance-usdm.BNBUSDT"


def _kinds(outcome) -> list[tuple[int, str, int, str]]:
    return [(n.event.rule_id, n.event.pair, (n.event.ts_event_us // 1_000_000) % 100, n.event.kind)
            for n in outcome.events]


def test_all_pairs_rule_keeps_one_state_per_pair_and_respects_timeframe_and_enabled():
    ev = Evaluator()
    ev.set_rules([
        rule("condition", {"trigger": "z > 2"}, rule_id=1),  # every pair, 1s
        rule("condition", {"trigger": "z > 2"}, rule_id=2, pair=OTHER),
        rule("condition", {"trigger": "z > 2"}, rule_id=3, timeframe="1m"),
        replace(rule("condition", {"trigger": "z > 2"}, rule_id=4), enabled=False),
    ])
    batch = [metric(2.5, 0), metric(0.0, 0, pair=OTHER), metric(1.0, 1), metric(2.5, 1, pair=OTHER),
             metric(2.6, 2)]
    out = ev.evaluate(batch)
    base = metric(0, 0).ts_event_us // 1_000_000 % 100
    # rule 1 on PAIR: fires at seq 0, 1.0 clears (default clear), 2.6 fires again at seq 2; on OTHER it
    # fires at seq 1 from its own state. Rule 2 (OTHER only) fires at seq 1. Rule 3 (1m) and 4 (disabled) never.
    assert sorted(_kinds(out)) == sorted([
        (1, PAIR, base, "trigger"), (1, PAIR, base + 2, "trigger"),
        (1, OTHER, base + 1, "trigger"), (2, OTHER, base + 1, "trigger"),
    ])
    assert set(out.states) == {(1, PAIR, "1s"), (1, OTHER, "1s"), (2, OTHER, "1s")}
    assert out.evaluations == 5 + 2  # rule 1 on all five metrics, rule 2 on OTHER's two


def test_states_change_only_on_commit():
    ev = Evaluator()
    ev.set_rules([rule("condition", {"trigger": "z > 2"})])
    first = ev.evaluate([metric(2.5, 0)])
    assert len(first.events) == 1 and ev.states == {}
    # not committed (the write failed): the same metric is evaluated again and fires again
    assert len(ev.evaluate([metric(2.5, 0)]).events) == 1
    ev.commit(first.states)
    assert ev.evaluate([metric(2.5, 0)]).events == []  # committed: a redelivery is ignored


def test_deleting_a_rule_drops_its_states():
    ev = Evaluator()
    ev.set_rules([rule("condition", {"trigger": "z > 2"}, rule_id=1), rule("condition", {"trigger": "z > 2"}, rule_id=2)])
    ev.commit(ev.evaluate([metric(1.0, 0)]).states)
    ev.set_rules([rule("condition", {"trigger": "z > 2"}, rule_id=2)])
    assert set(ev.states) == {(2, PAIR, "1s")}


EVENT = AlertEvent(rule_id=7, rule_name="wide", pair=PAIR, timeframe="1m", ts_event_us=1, kind="trigger",
                   message="wide: z=2.5", values={"zscore": 2.5, "correlation": None}, dedupe_key="7:p:1m:trigger:1",
                   ts_compute_us=2)


def test_payload_formats():
    as_json = orjson.loads(render(EVENT, Channel("json", "http://h/")))
    assert as_json["type"] == "alert" and as_json["dedupe_key"] == EVENT.dedupe_key
    assert as_json["values"] == {"zscore": 2.5, "correlation": None}
    assert orjson.loads(render(EVENT, Channel("slack", "http://h/"))) == {"text": "[trigger] wide: z=2.5"}
    tg = orjson.loads(render(EVENT, Channel("telegram", "http://h/", chat_id="-100")))
    assert tg == {"chat_id": "-100", "text": "[trigger] wide: z=2.5", "disable_web_page_preview": True}


def test_signature_matches_rfc_4231_test_case_2():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
