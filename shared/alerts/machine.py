"""Per-(rule, pair, timeframe) state machines: pure ``step(rule, state, metric) -> (state, firings)``.

All clocks are the metric's event time, so a replay, a restart or a redelivery gives the same
firings as an uninterrupted run. A metric at or before the last one processed (by
``(ts_event_us, seq)``) is ignored: re-delivery can never fire twice.

Condition rules (hysteresis, pending, cooldown)
    idle --trigger true for ``pending_n`` evaluations and ``pending_s`` of event time--> active,
    firing ``trigger`` unless the last firing is less than ``cooldown_s`` ago (then the episode is
    active but silent). active --clear true (default: trigger false)--> idle, firing ``clear`` only
    when ``notify_clear``. While active nothing fires, so flapping around the trigger level fires once.

Signal rules (entry / exit / stop with a gate)
    flat --z crosses above +entry, gate true, |z| below stop, not in cooldown--> short (``entry_short``)
    flat --z crosses below -entry, same conditions--> long (``entry_long``)
    short --z >= stop--> flat (``stop``); short --z <= exit--> flat (``exit``)
    long --z <= -stop--> flat (``stop``); long --z >= -exit--> flat (``exit``)
    Cooldown applies to entries only: exits and stops always fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from msgspec.structs import replace as evolve

from shared.alerts.evaluate import evaluate, operand_snapshot
from shared.alerts.fields import metric_values
from shared.alerts.spec import ConditionSpec, Rule, SignalSpec
from shared.alerts.tree import to_text
from shared.messages import Metric

Position = Literal["flat", "long", "short"]
US = 1_000_000
_NO_PREVIOUS: dict[str, float | None] = {}  # shared by rules without ``crosses``; never mutated


class RuleState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a rule remembers per (pair, timeframe); a msgspec struct so updates and JSON are cheap."""

    version: int = 0  # the rule version this state belongs to
    last_ts_us: int | None = None
    last_seq: int | None = None
    active: bool = False
    position: Position = "flat"
    pending_count: int = 0
    pending_since_us: int | None = None
    last_fired_us: int | None = None
    previous: dict[str, float | None] = msgspec.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleState:
        """Rebuild a saved state; raises ``msgspec.ValidationError`` on a corrupt document."""
        return msgspec.convert(data, cls)


@dataclass(frozen=True, slots=True)
class Firing:
    kind: str  # trigger | clear | entry_long | entry_short | exit | stop
    message: str
    values: dict[str, float | None]


class StepResult(msgspec.Struct, frozen=True):
    state: RuleState
    firings: tuple[Firing, ...] = ()
    evaluated: bool = True  # false when the metric was a duplicate or out of order
    suppressed: str | None = None  # why an entry/trigger did not fire (cooldown, gate, beyond stop)


def initial_state(rule: Rule) -> RuleState:
    return RuleState(version=rule.version)


def is_processed(state: RuleState, metric: Metric) -> bool:
    if state.last_ts_us is None:
        return False
    return (metric.ts_event_us, metric.seq) <= (state.last_ts_us, state.last_seq if state.last_seq is not None else -1)


def step(rule: Rule, state: RuleState, metric: Metric, values: dict[str, float | None] | None = None) -> StepResult:
    """Advance one rule's state by one metric (``values``: ``metric_values(metric)``, if already computed)."""
    if state.version != rule.version:
        state = initial_state(rule)
    if is_processed(state, metric):
        return StepResult(state, evaluated=False)
    if values is None:
        values = metric_values(metric)
    if isinstance(rule.spec, ConditionSpec):
        result = _condition_step(rule, rule.spec, state, metric, values)
    else:
        result = _signal_step(rule, rule.spec, state, metric, values)
    operands = rule.spec.operands()
    new_state = evolve(
        result.state,
        last_ts_us=metric.ts_event_us,
        last_seq=metric.seq,
        previous=operand_snapshot(operands, values) if operands else _NO_PREVIOUS,
    )
    return StepResult(new_state, result.firings, True, result.suppressed)


def _in_cooldown(rule: Rule, state: RuleState, ts_us: int) -> bool:
    return state.last_fired_us is not None and ts_us - state.last_fired_us < rule.cooldown_s * US


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _condition_step(
    rule: Rule, spec: ConditionSpec, state: RuleState, metric: Metric, values: dict[str, float | None]
) -> StepResult:
    ts = metric.ts_event_us
    trigger = evaluate(spec.trigger, values, state.previous)
    if not state.active:
        if trigger is None:
            return StepResult(state)
        if trigger is False:
            return StepResult(evolve(state, pending_count=0, pending_since_us=None))
        count = state.pending_count + 1
        since = state.pending_since_us if state.pending_since_us is not None else ts
        if count < rule.pending_n or ts - since < rule.pending_s * US:
            return StepResult(evolve(state, pending_count=count, pending_since_us=since), suppressed="pending")
        activated = evolve(state, active=True, pending_count=0, pending_since_us=None)
        if _in_cooldown(rule, state, ts):
            return StepResult(activated, suppressed="cooldown")
        message = f"{rule.name}: {metric.pair} {metric.timeframe} {to_text(spec.trigger)} (z={_fmt(values['zscore'])})"
        return StepResult(evolve(activated, last_fired_us=ts), (Firing("trigger", message, values),))
    if spec.clear is not None:
        clear = evaluate(spec.clear, values, state.previous)
    else:
        clear = None if trigger is None else not trigger
    if clear is not True:
        return StepResult(state)
    cleared = evolve(state, active=False, pending_count=0, pending_since_us=None)
    if not spec.notify_clear:
        return StepResult(cleared)
    message = f"{rule.name}: {metric.pair} {metric.timeframe} cleared (z={_fmt(values['zscore'])})"
    return StepResult(cleared, (Firing("clear", message, values),))


def _signal_step(
    rule: Rule, spec: SignalSpec, state: RuleState, metric: Metric, values: dict[str, float | None]
) -> StepResult:
    z = values.get(spec.field)
    if z is None:
        return StepResult(state)
    name = spec.field
    where = f"{rule.name}: {metric.pair} {metric.timeframe}"
    if state.position == "flat":
        before = state.previous.get(name)
        if before is None:
            return StepResult(state)
        if before <= spec.entry < z:
            kind, position, text = "entry_short", "short", f"crossed above +{spec.entry:g}"
        elif before >= -spec.entry > z:
            kind, position, text = "entry_long", "long", f"crossed below -{spec.entry:g}"
        else:
            return StepResult(state)
        if spec.stop is not None and abs(z) >= spec.stop:
            return StepResult(state, suppressed="beyond stop")
        if spec.gate is not None and evaluate(spec.gate, values) is not True:
            return StepResult(state, suppressed="gate")
        if _in_cooldown(rule, state, metric.ts_event_us):
            return StepResult(state, suppressed="cooldown")
        message = f"{where} {kind}: {name} {_fmt(z)} {text}"
        new_state = evolve(state, position=position, last_fired_us=metric.ts_event_us)
        return StepResult(new_state, (Firing(kind, message, values),))
    sign = 1.0 if state.position == "short" else -1.0
    if spec.stop is not None and sign * z >= spec.stop:
        kind, text = "stop", f"passed the stop {sign * spec.stop:+g}"
    elif sign * z <= spec.exit:
        kind, text = "exit", f"back inside the exit band ±{spec.exit:g}"
    else:
        return StepResult(state)
    message = f"{where} {kind} {state.position}: {name} {_fmt(z)} {text}"
    return StepResult(evolve(state, position="flat"), (Firing(kind, message, values),))


def dedupe_key(rule: Rule, metric: Metric, kind: str) -> str:
    """Identity of one firing: the same metric can never fire the same rule twice.

    ``rule:pair:timeframe:kind:ts``; on the ``tick`` timeframe several trades can share a microsecond,
    so the series position is appended there (``...:ts:seq``).
    """
    key = f"{rule.id}:{metric.pair}:{metric.timeframe}:{kind}:{metric.ts_event_us}"
    return f"{key}:{metric.seq}" if metric.timeframe == "tick" else key
