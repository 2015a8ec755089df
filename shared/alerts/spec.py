"""Validated rule definitions: condition and signal specs, delivery channels, the rule itself.

A rule arrives as a plain document (api body or ``alert_rules`` row); ``build_spec`` and
``build_channels`` turn it into frozen objects or raise ``RuleError`` naming the JSON path (and the
column inside a condition text).

Condition spec: ``{"trigger": <condition>, "clear": <condition> | null, "notify_clear": false}``.
Signal spec: ``{"field": "zscore", "entry": 2.0, "exit": 0.5, "stop": 4.0 | null, "gate": <condition> | null}``.
A ``<condition>`` is rule text (``shared.alerts.parser``) or its JSON tree (``shared.alerts.tree``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import field as dc_field  # SignalSpec has an attribute named ``field``
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.alerts.parser import parse_condition
from shared.alerts.tree import (
    Node,
    Operand,
    RuleError,
    crossing_operands,
    from_json,
    make_field,
    make_value,
    to_json,
    to_text,
)

RuleKind = Literal["condition", "signal"]
ChannelFormat = Literal["log", "json", "slack", "telegram"]
CHANNEL_FORMATS: tuple[str, ...] = ("log", "json", "slack", "telegram")


def parse_any(value: Any, path: str) -> Node:
    """A condition given as text or as a JSON tree."""
    if isinstance(value, str):
        try:
            return parse_condition(value)
        except RuleError as exc:
            raise exc.under(path) from None
    if isinstance(value, dict):
        return from_json(value, path)
    raise RuleError("expected rule text or a JSON condition object", path=path)


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    trigger: Node
    clear: Node | None = None  # None: the episode clears when the trigger is false
    notify_clear: bool = False
    _operands: frozenset[Operand] = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        out = crossing_operands(self.trigger)
        if self.clear is not None:
            out |= crossing_operands(self.clear)
        object.__setattr__(self, "_operands", frozenset(out))  # computed once: read on every step

    def operands(self) -> frozenset[Operand]:
        return self._operands

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": to_json(self.trigger),
            "clear": None if self.clear is None else to_json(self.clear),
            "notify_clear": self.notify_clear,
        }

    def text(self) -> str:
        clear = f" ; clear when {to_text(self.clear)}" if self.clear is not None else ""
        return to_text(self.trigger) + clear


@dataclass(frozen=True, slots=True)
class SignalSpec:
    entry: float
    exit: float
    stop: float | None = None
    gate: Node | None = None  # entries are suppressed unless the gate is true
    field: str = "zscore"
    _operands: frozenset[Operand] = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_operands", frozenset({Operand(self.field)}))

    def operands(self) -> frozenset[Operand]:
        return self._operands

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "entry": self.entry,
            "exit": self.exit,
            "stop": self.stop,
            "gate": None if self.gate is None else to_json(self.gate),
        }

    def text(self) -> str:
        parts = [f"signal on {self.field}: entry ±{self.entry:g}, exit ±{self.exit:g}"]
        if self.stop is not None:
            parts.append(f"stop ±{self.stop:g}")
        if self.gate is not None:
            parts.append(f"gate {to_text(self.gate)}")
        return ", ".join(parts)


Spec = ConditionSpec | SignalSpec


def _only(data: dict[str, Any], allowed: set[str], path: str) -> None:
    extra = set(data) - allowed
    if extra:
        raise RuleError(f"unexpected keys {sorted(extra)}; allowed: {sorted(allowed)}", path=path)


def _bool(data: dict[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise RuleError(f"expected true or false, got {value!r}", path=f"{path}.{key}")
    return value


def build_spec(kind: str, data: Any, path: str = "$") -> Spec:
    if not isinstance(data, dict):
        raise RuleError("expected an object", path=path)
    if kind == "condition":
        _only(data, {"trigger", "clear", "notify_clear"}, path)
        if data.get("trigger") is None:
            raise RuleError("a condition rule needs a trigger", path=f"{path}.trigger")
        trigger = parse_any(data["trigger"], f"{path}.trigger")
        clear = None if data.get("clear") is None else parse_any(data["clear"], f"{path}.clear")
        return ConditionSpec(trigger, clear, _bool(data, "notify_clear", path, False))
    if kind == "signal":
        _only(data, {"field", "entry", "exit", "stop", "gate"}, path)
        for key in ("entry", "exit"):
            if data.get(key) is None:
                raise RuleError(f"a signal rule needs {key}", path=f"{path}.{key}")
        entry = make_value(data["entry"], path=f"{path}.entry")
        exit_ = make_value(data["exit"], path=f"{path}.exit")
        stop = None if data.get("stop") is None else make_value(data["stop"], path=f"{path}.stop")
        if entry <= 0:
            raise RuleError(f"entry must be > 0, got {entry:g}", path=f"{path}.entry")
        if not 0 <= exit_ < entry:
            raise RuleError(f"exit must satisfy 0 <= exit < entry ({entry:g}), got {exit_:g}", path=f"{path}.exit")
        if stop is not None and stop <= entry:
            raise RuleError(f"stop must be > entry ({entry:g}), got {stop:g}", path=f"{path}.stop")
        gate = None if data.get("gate") is None else parse_any(data["gate"], f"{path}.gate")
        field_name = make_field(data.get("field", "zscore"), path=f"{path}.field")
        return SignalSpec(entry, exit_, stop, gate, field_name)
    raise RuleError(f"kind must be 'condition' or 'signal', got {kind!r}", path="$.kind")


@dataclass(frozen=True, slots=True)
class Channel:
    format: ChannelFormat
    url: str | None = None  # webhook target; None for the log channel
    secret_ref: str | None = None  # env var holding the HMAC secret (secrets never live in the db)
    chat_id: str | None = None  # Telegram chat

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format}
        for key in ("url", "secret_ref", "chat_id"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def build_channel(data: Any, path: str) -> Channel:
    if not isinstance(data, dict):
        raise RuleError("expected a channel object", path=path)
    _only(data, {"format", "url", "secret_ref", "chat_id"}, path)
    fmt = data.get("format", "json")
    if fmt not in CHANNEL_FORMATS:
        raise RuleError(f"format must be one of {', '.join(CHANNEL_FORMATS)}, got {fmt!r}", path=f"{path}.format")
    url = data.get("url")
    if fmt == "log":
        if url is not None:
            raise RuleError("the log channel takes no url", path=f"{path}.url")
    else:
        if not isinstance(url, str):
            raise RuleError(f"a {fmt} webhook needs a url", path=f"{path}.url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RuleError(f"url must be an absolute http(s) URL, got {url!r}", path=f"{path}.url")
    secret_ref = data.get("secret_ref")
    if secret_ref is not None and (not isinstance(secret_ref, str) or not secret_ref.isidentifier()):
        raise RuleError("secret_ref must name an environment variable", path=f"{path}.secret_ref")
    chat_id = data.get("chat_id")
    if fmt == "telegram" and chat_id is None:
        raise RuleError("a telegram channel needs chat_id", path=f"{path}.chat_id")
    if chat_id is not None:
        chat_id = str(chat_id)
    return Channel(fmt, url, secret_ref, chat_id)


def build_channels(data: Any, path: str = "$.channels") -> tuple[Channel, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise RuleError("expected a list of channels", path=path)
    return tuple(build_channel(item, f"{path}[{i}]") for i, item in enumerate(data))


@dataclass(frozen=True, slots=True)
class Rule:
    """One enabled-or-not alert rule as the worker evaluates it."""

    id: int
    name: str
    pair: str | None  # None: every pair
    timeframe: str
    spec: Spec
    enabled: bool = True
    cooldown_s: float = 0.0
    pending_n: int = 1
    pending_s: float = 0.0
    channels: tuple[Channel, ...] = field(default_factory=tuple)
    version: int = 0  # hash of kind/pair/timeframe/spec: a changed rule starts from a fresh state

    @property
    def kind(self) -> RuleKind:
        return "condition" if isinstance(self.spec, ConditionSpec) else "signal"

    def matches(self, pair: str, timeframe: str) -> bool:
        return self.enabled and self.timeframe == timeframe and (self.pair is None or self.pair == pair)
