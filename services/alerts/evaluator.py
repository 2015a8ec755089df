"""Rules index + per-(rule, pair, timeframe) states: evaluates a batch of metrics without I/O.

States are only replaced in ``commit`` after the batch is durable, so a failed write leaves the
in-memory states as they were and the redelivered metrics are evaluated again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from services.alerts.store import NewEvent, StateKey
from shared.alerts.fields import metric_values
from shared.alerts.machine import RuleState, dedupe_key, initial_state, step
from shared.alerts.spec import Rule
from shared.messages import AlertEvent, Metric
from shared.timeutil import now_us


@dataclass
class BatchOutcome:
    states: dict[StateKey, RuleState] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)
    evaluations: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)


class Evaluator:
    def __init__(self) -> None:
        self.rules: dict[int, Rule] = {}
        self._index: dict[tuple[str | None, str], list[Rule]] = {}
        self.states: dict[StateKey, RuleState] = {}

    def set_rules(self, rules: list[Rule]) -> None:
        self.rules = {r.id: r for r in rules}
        index: dict[tuple[str | None, str], list[Rule]] = defaultdict(list)
        for rule in rules:
            if rule.enabled:
                index[(rule.pair, rule.timeframe)].append(rule)
        self._index = dict(index)
        # Forget states of deleted rules (their rows went with the rule).
        self.states = {k: s for k, s in self.states.items() if k[0] in self.rules}

    def set_states(self, states: dict[StateKey, RuleState]) -> None:
        self.states = {k: s for k, s in states.items()}

    def rules_for(self, pair: str, timeframe: str) -> list[Rule]:
        return self._index.get((pair, timeframe), []) + self._index.get((None, timeframe), [])

    def evaluate(self, metrics: list[Metric]) -> BatchOutcome:
        out = BatchOutcome()
        for metric in metrics:
            rules = self.rules_for(metric.pair, metric.timeframe)
            if not rules:
                continue
            values = metric_values(metric)
            for rule in rules:
                key = (rule.id, metric.pair, metric.timeframe)
                state = out.states.get(key) or self.states.get(key) or initial_state(rule)
                result = step(rule, state, metric, values)
                if not result.evaluated:
                    continue
                out.evaluations += 1
                out.states[key] = result.state
                if result.suppressed:
                    out.suppressed[result.suppressed] += 1
                for firing in result.firings:
                    event = AlertEvent(
                        rule_id=rule.id,
                        rule_name=rule.name,
                        pair=metric.pair,
                        timeframe=metric.timeframe,
                        ts_event_us=metric.ts_event_us,
                        kind=firing.kind,
                        message=firing.message,
                        values=firing.values,
                        dedupe_key=dedupe_key(rule, metric, firing.kind),
                        ts_compute_us=now_us(),
                    )
                    out.events.append(NewEvent(event, rule.channels))
        return out

    def commit(self, states: dict[StateKey, RuleState]) -> None:
        self.states.update(states)
