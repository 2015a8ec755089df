"""Request/response models of the alerts api, and compiling a request into a validated rule.

Pydantic checks shapes and ranges; ``compile_rule`` then builds the rule tree and raises
``RuleError`` with a JSON path into the request body (and the column inside a rule text), which the
route reports as a 422 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.alerts.spec import Spec, build_channels, build_spec
from shared.alerts.tree import RuleError
from shared.errors import InvalidInput
from shared.instruments import Pair
from shared.timeframes import timeframe_us

Condition = str | dict[str, Any]

_CONDITION_DOC = (
    "Rule text, e.g. `|z| > 2 and corr > 0.7 and adf_p < 0.05` (grammar in shared/alerts/parser.py: "
    "`>`, `>=`, `<`, `<=`, `crosses above`, `crosses below`, `|field|` or `abs(field)`, and/or/not, parentheses), "
    'or the JSON tree, e.g. `{"all": [{"field": "z", "abs": true, "op": ">", "value": 2}]}`. '
    "Fields (aliases): zscore (z), correlation (corr, rho), adf_p (p, pvalue), adf_stat (adf), half_life (hl), "
    "beta (b), alpha (a), r2 (rsq), spread (s), y_price (y), x_price (x), window."
)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"format": "json", "url": "https://hooks.example.com/pairs", "secret_ref": "PAIRS_HOOK_SECRET"},
        {"format": "log"},
    ]})

    format: Literal["log", "json", "slack", "telegram"] = "json"
    url: str | None = Field(None, description="Webhook URL (not for format 'log').")
    secret_ref: str | None = Field(
        None, description="Name of the environment variable (on the alerts worker) holding the HMAC secret."
    )
    chat_id: str | None = Field(None, description="Telegram chat id (format 'telegram').")


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry: float = Field(..., gt=0, description="Enter when z crosses ±entry (short above, long below).", examples=[2.0])
    exit: float = Field(..., ge=0, description="Exit when z returns inside ±exit.", examples=[0.5])
    stop: float | None = Field(None, gt=0, description="Stop when |z| passes this level.", examples=[4.0])
    gate: Condition | None = Field(None, description="Entries are suppressed unless true. " + _CONDITION_DOC,
                                   examples=["corr >= 0.7 and adf_p <= 0.05"])
    field: str = Field("zscore", description="Metric field the signal follows.")


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, examples=["ETH/BTC wide spread"])
    pair: str | None = Field(None, description="Pair id `Y~X`; null applies the rule to every pair.",
                             examples=["binance-spot.ETHUSDT~binance-spot.BTCUSDT"])
    timeframe: str = Field(..., description="Metric timeframe: tick, 1s, 5s, 1m, 5m, 15m, 1h, 1d.", examples=["1m"])
    kind: Literal["condition", "signal"] = "condition"
    condition: Condition | None = Field(None, description="Trigger of a condition rule. " + _CONDITION_DOC,
                                        examples=["|z| > 2 and corr > 0.7 and adf_p < 0.05"])
    clear: Condition | None = Field(None, description="Clear level (hysteresis); default: the trigger is false.",
                                    examples=["|z| < 1.5"])
    notify_clear: bool = Field(False, description="Also fire a 'clear' event when an episode ends.")
    signal: SignalIn | None = Field(None, description="Parameters of a signal rule.")
    enabled: bool = True
    cooldown_s: float = Field(0, ge=0, description="Minimum event time between firings per (rule, pair).")
    pending_n: int = Field(1, ge=1, description="The trigger must hold for this many evaluations.")
    pending_s: float = Field(0, ge=0, description="... and for this many seconds of event time.")
    channels: list[ChannelIn] = Field(default_factory=list, max_length=10)


class RuleIn(RuleBase):
    """A rule to create or replace."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "ETH/BTC wide spread", "pair": "binance-spot.ETHUSDT~binance-spot.BTCUSDT", "timeframe": "1m",
         "kind": "condition", "condition": "|z| > 2 and corr > 0.7", "clear": "|z| < 1.5", "cooldown_s": 300,
         "channels": [{"format": "json", "url": "https://hooks.example.com/pairs"}]},
        {"name": "mean reversion", "pair": None, "timeframe": "5m", "kind": "signal",
         "signal": {"entry": 2, "exit": 0.5, "stop": 4, "gate": "corr >= 0.7 and adf_p <= 0.05"}},
    ]})


class RulePatch(BaseModel):
    """Fields to change; everything else keeps its stored value. The result is validated as a whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"cooldown_s": 600}]})

    name: str | None = Field(None, min_length=1, max_length=200)
    pair: str | None = None
    timeframe: str | None = None
    kind: Literal["condition", "signal"] | None = None
    condition: Condition | None = None
    clear: Condition | None = None
    notify_clear: bool | None = None
    signal: SignalIn | None = None
    enabled: bool | None = None
    cooldown_s: float | None = Field(None, ge=0)
    pending_n: int | None = Field(None, ge=1)
    pending_s: float | None = Field(None, ge=0)
    channels: list[ChannelIn] | None = Field(None, max_length=10)


class RuleOut(BaseModel):
    id: int
    name: str
    pair: str | None
    timeframe: str
    kind: Literal["condition", "signal"]
    expression: str = Field(..., description="Canonical text of the rule.")
    spec: dict[str, Any] = Field(..., description="The validated tree / signal parameters as stored.")
    enabled: bool
    cooldown_s: float
    pending_n: int
    pending_s: float
    channels: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class RulePreview(BaseModel):
    """A valid rule as it would be stored."""

    kind: Literal["condition", "signal"]
    pair: str | None
    timeframe: str
    expression: str
    spec: dict[str, Any]
    channels: list[dict[str, Any]]


class RuleList(BaseModel):
    data: list[RuleOut]
    count: int = Field(..., description="Total matching rules (before limit/offset).")


class EventOut(BaseModel):
    id: int
    dedupe_key: str
    ts: datetime = Field(..., description="Event time of the metric that fired (UTC).")
    rule_id: int
    rule_name: str
    pair: str
    timeframe: str
    kind: str = Field(..., description="trigger, clear, entry_long, entry_short, exit or stop")
    message: str
    values: dict[str, float | None]
    fired_at: datetime
    stream_id: str | None
    delivery_status: Literal["none", "pending", "delivered", "failed"]
    delivery_attempts: int
    delivered_at: datetime | None
    delivery_error: str | None


class EventList(BaseModel):
    data: list[EventOut]
    count: int


class DeadDeliveryOut(BaseModel):
    id: int
    dedupe_key: str
    event_ts: datetime
    rule_id: int
    channel: dict[str, Any]
    attempts: int
    last_error: str
    payload: dict[str, Any]
    created_at: datetime


class DeadDeliveryList(BaseModel):
    data: list[DeadDeliveryOut]
    count: int


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """What gets stored: canonical columns of ``alert_rules``."""

    name: str
    pair: str | None
    timeframe: str
    kind: str
    expression: str
    spec: dict[str, Any]
    enabled: bool
    cooldown_s: float
    pending_n: int
    pending_s: float
    channels: list[dict[str, Any]]


def compile_rule(body: RuleBase) -> CompiledRule:
    """Validate a request into stored columns; ``RuleError.path`` points into the request body."""
    pair = None
    if body.pair is not None:
        try:
            pair = Pair.parse(body.pair).id
        except InvalidInput as exc:
            raise RuleError(str(exc), path="$.pair") from None
    try:
        timeframe_us(body.timeframe)
    except InvalidInput as exc:
        raise RuleError(str(exc), path="$.timeframe") from None
    spec: Spec
    if body.kind == "condition":
        if body.signal is not None:
            raise RuleError("a condition rule takes no signal parameters", path="$.signal")
        if body.condition is None:
            raise RuleError("a condition rule needs a condition", path="$.condition")
        raw = {"trigger": body.condition, "clear": body.clear, "notify_clear": body.notify_clear}
        spec = _located(lambda: build_spec("condition", raw), {"$.trigger": "$.condition"})
    else:
        if body.condition is not None or body.clear is not None:
            raise RuleError("a signal rule takes signal parameters, not condition/clear", path="$.condition")
        if body.signal is None:
            raise RuleError("a signal rule needs signal parameters", path="$.signal")
        spec = build_spec("signal", body.signal.model_dump(), "$.signal")
    channels = build_channels([c.model_dump(exclude_none=True) for c in body.channels])
    return CompiledRule(
        name=body.name, pair=pair, timeframe=body.timeframe, kind=body.kind, expression=spec.text(),
        spec=spec.to_json(), enabled=body.enabled, cooldown_s=body.cooldown_s, pending_n=body.pending_n,
        pending_s=body.pending_s, channels=[c.to_json() for c in channels],
    )


def _located(build, renames: dict[str, str]) -> Spec:
    try:
        return build()
    except RuleError as exc:
        path = exc.path or "$"
        for old, new in renames.items():
            if path == old or path.startswith(old + ".") or path.startswith(old + "["):
                path = new + path[len(old):]
        raise RuleError(exc.problem, position=exc.position, path=path) from None


def request_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as a request document (PATCH merges the changes into it)."""
    doc: dict[str, Any] = {k: row[k] for k in ("name", "pair", "timeframe", "kind", "enabled", "cooldown_s",
                                              "pending_n", "pending_s", "channels")}
    spec = row["spec"]
    if row["kind"] == "condition":
        doc.update(condition=spec["trigger"], clear=spec.get("clear"), notify_clear=spec.get("notify_clear", False))
    else:
        doc["signal"] = {k: spec.get(k) for k in ("entry", "exit", "stop", "gate", "field")}
    return doc
