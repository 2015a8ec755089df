"""State machines: signal entry/exit/stop with a gate, condition hysteresis, pending, cooldown, crosses.

Expected firings are derived by hand from the rule definitions in ``shared.alerts.machine``'s
docstring (listed next to each case), not from running the code.
"""

from __future__ import annotations

from dataclasses import replace

import msgspec
import orjson
import pytest

from shared.alerts.evaluate import evaluate
from shared.alerts.machine import RuleState, dedupe_key, step
from shared.alerts.parser import parse_condition

from .helpers import metric, rule, run, series

SIGNAL = {"entry": 2.0, "exit": 0.5, "stop": 4.0, "gate": "corr >= 0.7 and adf_p <= 0.05"}

SIGNAL_CASES = [
    # (z series, expected [(seq, kind)]) with entry 2, exit 0.5, stop 4
    ("entry short then exit", [0.5, 1.5, 2.3, 1.0, 0.4], [(2, "entry_short"), (4, "exit")]),
    ("entry long then exit", [-0.5, -2.1, -1.0, -0.6, -0.3], [(1, "entry_long"), (4, "exit")]),
    ("short stopped out", [1.0, 2.5, 3.0, 4.2, 3.0], [(1, "entry_short"), (3, "stop")]),
    ("long stopped out", [-1.0, -2.5, -4.0], [(1, "entry_long"), (2, "stop")]),
    ("overshoot through the band exits", [1.0, 2.5, -1.0], [(1, "entry_short"), (2, "exit")]),
    ("no crossing, already above at start", [2.5, 2.6, 2.7], []),
    ("crossing straight past the stop does not enter", [1.0, 4.5, 3.0, 1.0], []),
    ("flapping around entry fires once", [1.9, 2.1, 1.9, 2.1, 1.9, 2.1, 1.9], [(1, "entry_short")]),
    ("re-entry needs a new crossing after exit", [1.0, 2.2, 0.3, 2.2], [(1, "entry_short"), (2, "exit"), (3, "entry_short")]),
    ("exactly at entry is not a crossing", [1.0, 2.0, 2.0], []),
]


@pytest.mark.parametrize(("zs", "expected"), [c[1:] for c in SIGNAL_CASES], ids=[c[0] for c in SIGNAL_CASES])
def test_signal_state_machine(zs, expected):
    fired, _ = run(rule("signal", SIGNAL), series(zs))
    assert fired == expected


def test_gate_suppresses_entries_while_the_relationship_is_broken():
    r = rule("signal", SIGNAL)
    metrics = [
        metric(1.0, 0, corr=0.3),
        metric(2.5, 1, corr=0.3),  # crossing, gate false (corr < 0.7): suppressed
        metric(2.6, 2, corr=0.9),  # gate true again but no new crossing: still flat
        metric(1.5, 3, corr=0.9),
        metric(2.4, 4, corr=0.9, adf_p=0.2),  # crossing, gate false (adf_p > 0.05)
        metric(1.5, 5, corr=0.9),
        metric(2.4, 6, corr=0.9, adf_p=None),  # gate unknown (not warm): suppressed too
        metric(1.5, 7),
        metric(2.4, 8),  # gate true: enters
    ]
    fired, state = run(r, metrics)
    assert fired == [(8, "entry_short")]
    assert state.position == "short"
    suppressed = [step(r, RuleState(version=r.version, previous={"zscore": 1.0}), metrics[1]).suppressed]
    assert suppressed == ["gate"]


CONDITION_CASES = [
    # trigger |z| > 2, clear |z| < 1.5 (hysteresis), notify_clear
    ("flapping inside the hysteresis fires once", [2.1, 1.9, 2.1, 1.9, 2.1], [(0, "trigger")]),
    ("clear then trigger again", [2.1, 1.4, 2.2], [(0, "trigger"), (1, "clear"), (2, "trigger")]),
    ("negative side counts through |z|", [-2.5, -1.0, 0.0], [(0, "trigger"), (1, "clear")]),
    ("missing values change nothing", [None, 2.5, None, 1.0], [(1, "trigger"), (3, "clear")]),
]


@pytest.mark.parametrize(("zs", "expected"), [c[1:] for c in CONDITION_CASES], ids=[c[0] for c in CONDITION_CASES])
def test_condition_hysteresis(zs, expected):
    r = rule("condition", {"trigger": "|z| > 2", "clear": "|z| < 1.5", "notify_clear": True})
    assert run(r, series(zs))[0] == expected


def test_default_clear_is_not_trigger_and_flaps_without_hysteresis():
    r = rule("condition", {"trigger": "|z| > 2"})
    # each return above 2 after dipping below is a new episode (no clear level, no cooldown)
    assert run(r, series([2.1, 1.9, 2.1, 1.9]))[0] == [(0, "trigger"), (2, "trigger")]


def test_pending_count_requires_consecutive_evaluations():
    r = rule("condition", {"trigger": "z > 2"}, pending_n=3)
    # true at 0,1 then false resets; true at 3,4,5 -> fires at the third, 5
    assert run(r, series([2.5, 2.5, 1.0, 2.5, 2.5, 2.5, 2.5]))[0] == [(5, "trigger")]


def test_pending_seconds_use_event_time():
    r = rule("condition", {"trigger": "z > 2"}, pending_s=10)
    # one metric per 4 s: true from t=0; held 8 s at seq 2, 12 s at seq 3 -> fires at seq 3
    assert run(r, series([2.5, 2.5, 2.5, 2.5, 2.5], step_us=4_000_000))[0] == [(3, "trigger")]


def test_cooldown_per_rule_and_pair_uses_event_time():
    r = rule("condition", {"trigger": "z > 2"}, cooldown_s=60)
    # one metric per 10 s: fires at t=0; re-triggers at t=20 and t=40 fall inside 60 s: silent;
    # the episode started at t=40 stays active, it clears at t=50 and re-triggers at t=70 >= 60: fires
    zs = [2.5, 1.0, 2.5, 1.0, 2.5, 1.0, 1.0, 2.5]
    assert run(r, series(zs, step_us=10_000_000))[0] == [(0, "trigger"), (7, "trigger")]


def test_signal_cooldown_holds_entries_but_never_exits():
    r = rule("signal", {"entry": 2, "exit": 0.5}, cooldown_s=30)
    zs = [1.0, 2.5, 0.0, 2.5, 0.0, 1.0, 2.5]  # one per 10 s
    # entry at t=10; exit t=20 always fires; entry at t=30 is 20 s after the last firing (t=20) -> held;
    # crossing at t=60 is 40 s after t=20 -> enters
    assert run(r, series(zs, step_us=10_000_000))[0] == [(1, "entry_short"), (2, "exit"), (6, "entry_short")]


CROSS_TABLE = [
    # (previous, current, crosses above 2, crosses below 2)
    (1.0, 3.0, True, False),
    (2.0, 2.5, True, False),  # from exactly the level upwards counts
    (2.5, 3.0, False, False),
    (3.0, 1.0, False, True),
    (2.0, 1.0, False, True),
    (2.0, 2.0, False, False),
    (None, 3.0, False, False),  # no previous value: no crossing
]


@pytest.mark.parametrize(("prev", "cur", "above", "below"), CROSS_TABLE)
def test_crosses_above_and_below(prev, cur, above, below):
    values = {"zscore": cur}
    previous = {"zscore": prev}
    assert evaluate(parse_condition("z crosses above 2"), values, previous) is above
    assert evaluate(parse_condition("z crosses below 2"), values, previous) is below


def test_crosses_on_absolute_value_remembers_the_absolute_previous():
    r = rule("condition", {"trigger": "|z| crosses above 2"})
    # |z| goes 1.5 -> 2.5 (crossing, though z itself went from -1.5 to -2.5: a crossing *below* -2)
    assert run(r, series([-1.5, -2.5, -3.0, -1.0, 2.2]))[0] == [(1, "trigger"), (4, "trigger")]


KLEENE = [
    ("z > 1 and corr > 0.5", {"zscore": 2.0, "correlation": None}, None),
    ("z > 1 and corr > 0.5", {"zscore": 0.0, "correlation": None}, False),
    ("z > 1 or corr > 0.5", {"zscore": 2.0, "correlation": None}, True),
    ("z > 1 or corr > 0.5", {"zscore": 0.0, "correlation": None}, None),
    ("not corr > 0.5", {"correlation": None}, None),
    ("not corr > 0.5", {"correlation": 0.4}, True),
]


@pytest.mark.parametrize(("text", "values", "expected"), KLEENE)
def test_missing_values_follow_kleene_logic(text, values, expected):
    assert evaluate(parse_condition(text), values) is expected


def test_redelivered_or_older_metric_never_fires_twice():
    r = rule("condition", {"trigger": "z > 2"})
    ms = series([1.0, 2.5])
    _, state = run(r, ms)
    again = step(r, state, ms[1])
    assert again.evaluated is False and again.firings == () and again.state == state
    assert step(r, state, ms[0]).evaluated is False


def test_state_survives_a_json_round_trip_mid_series():
    r = rule("signal", SIGNAL)
    zs = [0.5, 1.5, 2.3, 1.0, 0.4, -2.2, -4.5, 0.0]
    whole, _ = run(r, series(zs))
    first, state = run(r, series(zs)[:4])
    restored = RuleState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    rest, _ = run(r, series(zs)[4:], restored)
    assert first + rest == whole
    assert whole == [(2, "entry_short"), (4, "exit"), (5, "entry_long"), (6, "stop")]


def test_changed_rule_version_starts_from_a_fresh_state():
    r = rule("signal", SIGNAL)
    _, state = run(r, series([1.0, 2.5]))
    assert state.position == "short"
    new_version = replace(r, version=r.version + 1)
    result = step(new_version, state, metric(2.6, 2))
    assert result.state.position == "flat" and result.state.version == new_version.version


def test_tick_metrics_sharing_a_microsecond_keep_distinct_dedupe_keys():
    r = rule("condition", {"trigger": "z > 2"}, timeframe="tick")
    # seq 1 triggers, seq 2 clears, seq 3 triggers again: all three in the same microsecond
    same_us = metric(0, 0).ts_event_us
    ms = [msgspec.structs.replace(metric(z, i, timeframe="tick"), ts_event_us=same_us)
          for i, z in enumerate([0.0, 2.5, 0.0, 2.5])]
    fired, _ = run(r, ms)
    assert fired == [(1, "trigger"), (3, "trigger")]
    keys = {dedupe_key(r, ms[i], "trigger") for i in (1, 3)}
    assert len(keys) == 2
    bar = metric(2.5, 5)
    assert dedupe_key(r, bar, "trigger") == f"1:{bar.pair}:1s:trigger:{bar.ts_event_us}"
