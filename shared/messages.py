"""Typed, versioned records that travel on Redis Streams.

Decisions (written once, here):

* Every record is a frozen, keyword-only ``msgspec.Struct`` with a ``type`` tag and a schema
  version ``v``. A stream entry carries exactly one field, ``data``, holding the record encoded
  once as JSON. Consumers must ignore records whose ``v`` they do not know (see docs/streams.md).
* Times are integer microseconds since the Unix epoch, UTC. Every record keeps the exchange clock
  (``ts_event_us``) and the local clock (``ts_ingest_us`` / ``ts_compute_us``).
* Prices and quantities are parsed from Binance's decimal strings to float64 exactly once, at
  ingest. float64 holds every Binance price/quantity (<= 15 significant digits) and msgspec writes
  the shortest repr, so the decimal value survives the round trip unchanged.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shared.errors import DecodeError

SCHEMA_VERSION = 1
STREAM_FIELD = b"data"

Side = Literal["buy", "sell"]
Source = Literal["live", "backfill", "seed", "replay", "simulated", "upload"]


class Record(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    v: int = SCHEMA_VERSION


class Tick(Record, tag="tick", kw_only=True):
    """One trade. ``side`` is the aggressor: Binance's ``m`` (buyer is maker) true means a sell."""

    instrument: str
    trade_id: int
    price: float
    qty: float
    side: Side
    ts_event_us: int  # trade time (Binance ``T``): the clock bars are bucketed on
    ts_exchange_us: int  # message event time (Binance ``E``); equals ts_event_us for dump files
    ts_ingest_us: int  # local receive time
    source: Source = "live"


class Bar(Record, tag="bar", kw_only=True):
    """An OHLCV bar, left-labelled: ``ts_event_us`` is the UTC bucket start."""

    instrument: str
    timeframe: str
    ts_event_us: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    buy_volume: float
    trades: int
    ts_compute_us: int


class Metric(Record, tag="metric", kw_only=True):
    """Pair analytics at one bar close (or one merged tick for timeframe ``tick``).

    Fields that need a full window are ``None`` until ``warm`` is true.
    """

    pair: str
    timeframe: str
    ts_event_us: int  # bucket start of the bar that closed (trade time for ``tick``)
    seq: int  # position of this observation in the pair's series for this timeframe, from 0
    method: str  # hedge method that produced beta/alpha/spread
    window: int  # observations in the rolling window
    y_price: float
    x_price: float
    warm: bool
    beta: float | None = None
    alpha: float | None = None
    r2: float | None = None
    spread: float | None = None
    zscore: float | None = None
    correlation: float | None = None  # Pearson correlation of the legs' log returns over the window
    adf_stat: float | None = None
    adf_p: float | None = None
    half_life: float | None = None  # in observations of this timeframe
    ts_compute_us: int


class GapEvent(Record, tag="gap", kw_only=True):
    """Trade ids ``first_missing..last_missing`` could not be recovered (published, never silent)."""

    instrument: str
    first_missing: int
    last_missing: int
    ts_event_us: int
    ts_ingest_us: int
    reason: str


class AlertEvent(Record, tag="alert", kw_only=True):
    """One firing of an alert rule."""

    rule_id: int
    rule_name: str
    pair: str
    timeframe: str
    ts_event_us: int  # the metric's event time that triggered it
    kind: str  # "trigger" | "clear" | "entry_long" | "entry_short" | "exit" | "stop"
    message: str
    values: dict[str, float | None]
    dedupe_key: str
    ts_compute_us: int


AnyRecord = Tick | Bar | Metric | GapEvent | AlertEvent
RECORD_TYPES: tuple[type[Record], ...] = (Tick, Bar, Metric, GapEvent, AlertEvent)

_encoder = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder(AnyRecord)
_typed_decoders: dict[type, msgspec.json.Decoder] = {t: msgspec.json.Decoder(t) for t in RECORD_TYPES}


def encode(record: Record) -> bytes:
    return _encoder.encode(record)


def decode(data: bytes | str, record_type: type[Record] | None = None) -> AnyRecord:
    """Decode one record; raise ``DecodeError`` (never a msgspec error) on anything malformed."""
    decoder = _any_decoder if record_type is None else _typed_decoders[record_type]
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"bad {getattr(record_type, '__name__', 'record')}: {exc}") from exc


def to_fields(record: Record) -> dict[bytes, bytes]:
    """The field map of one stream entry."""
    return {STREAM_FIELD: encode(record)}


def from_fields(fields: dict, record_type: type[Record] | None = None) -> AnyRecord:
    raw = fields.get(STREAM_FIELD)
    if raw is None:
        raw = fields.get(STREAM_FIELD.decode())
    if raw is None:
        raise DecodeError(f"stream entry has no '{STREAM_FIELD.decode()}' field (fields: {sorted(map(str, fields))})")
    return decode(raw, record_type)


def json_schema() -> dict:
    """Machine-readable schema of every record (JSON Schema, generated from the types)."""
    return msgspec.json.schema(AnyRecord)


if __name__ == "__main__":  # `python -m shared.messages > docs/schemas/records.schema.json`
    import json
    import sys

    json.dump(json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
