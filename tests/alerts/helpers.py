"""Builders shared by the alerts tests."""

from __future__ import annotations

from shared.alerts.machine import RuleState, initial_state, step
from shared.alerts.spec import Rule, build_spec
from shared.messages import Metric

PAIR = "binance-spot.ETHUSDT~binance-spot.BTCUSDT"
T0_US = 1_700_000_000_000_000


def metric(z: float | None, i: int, *, corr: float | None = 0.9, adf_p: float | None = 0.01,
           pair: str = PAIR, timeframe: str = "1s", step_us: int = 1_000_000) -> Metric:
    """The i-th metric of a series, one per ``step_us`` of event time."""
    return Metric(
        pair=pair, timeframe=timeframe, ts_event_us=T0_US + i * step_us, seq=i, method="ols", window=60,
        y_price=2000.0, x_price=40000.0, warm=z is not None, beta=0.05, alpha=0.0, r2=0.8, spread=0.1,
        zscore=z, correlation=corr, adf_stat=-3.5, adf_p=adf_p, half_life=12.0, ts_compute_us=T0_US + i * step_us,
    )


def rule(kind: str, spec: dict, *, rule_id: int = 1, cooldown_s: float = 0, pending_n: int = 1,
         pending_s: float = 0, pair: str | None = None, timeframe: str = "1s") -> Rule:
    return Rule(id=rule_id, name=f"r{rule_id}", pair=pair, timeframe=timeframe, spec=build_spec(kind, spec),
                cooldown_s=cooldown_s, pending_n=pending_n, pending_s=pending_s)


def run(r: Rule, metrics: list[Metric], state: RuleState | None = None) -> tuple[list[tuple[int, str]], RuleState]:
    """Feed metrics in order; returns [(seq, kind)] of the firings and the final state."""
    state = state or initial_state(r)
    fired = []
    for m in metrics:
        result = step(r, state, m)
        state = result.state
        fired += [(m.seq, f.kind) for f in result.firings]
    return fired, state


def series(zs: list[float | None], **kw) -> list[Metric]:
    return [metric(z, i, **kw) for i, z in enumerate(zs)]
