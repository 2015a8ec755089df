"""Binance trade payloads -> ``Tick`` records: the one normalizer shared by live, replay and backfill.

Payloads (field meanings from Binance's WebSocket docs):

* spot ``<s>@trade``:  ``{"e":"trade","E":event ms,"s":"BTCUSDT","t":trade id,"p":"61685.99000000",
  "q":"0.00017000","T":trade ms,"m":buyer is maker,"M":ignore}``
* USD-M ``<s>@trade``: ``{"e":"trade","E":..,"T":..,"s":..,"t":..,"p":"61800.30","q":"0.006",
  "X":"MARKET"|"INSURANCE_FUND"|"ADL"|"NA","m":..}``
* ``<s>@aggTrade`` (both): ``{"e":"aggTrade","E":..,"s":..,"a":agg id,"p":..,"q":..,"f":first id,
  "l":last id,"T":..,"m":..[,"M":..]}``; the tick's trade id is ``a``.

``m`` true means the buyer was the maker, so the aggressor sold: side ``"sell"``. Prices and
quantities arrive as decimal strings and become float64 exactly once, here. Every trade kind is
kept (USD-M insurance-fund/ADL prints included) so trade ids stay contiguous for gap detection.

Decoding uses msgspec typed structs (no intermediate dicts on the hot path); every failure becomes
a ``DecodeError`` naming the field.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from shared.errors import DecodeError, InvalidInput
from shared.instruments import Instrument
from shared.messages import Source, Tick
from shared.timeutil import epoch_to_us

SPOT_VENUE = "binance-spot"
USDM_VENUE = "binance-usdm"
BINANCE_VENUES = (SPOT_VENUE, USDM_VENUE)

StreamKind = Literal["trade", "aggTrade", "kline", "bookTicker", "depth", "other"]
TRADE_KINDS = frozenset(("trade", "aggTrade"))

# Event types of bare payloads (raw ``/ws/<stream>`` connections) that carry no trade.
_NON_TRADE_EVENTS = frozenset(
    ("kline", "depthUpdate", "bookTicker", "24hrTicker", "24hrMiniTicker", "markPriceUpdate", "forceOrder")
)


class _TradePayload(msgspec.Struct):
    t: int
    p: str
    q: str
    T: int
    m: bool
    s: str
    e: str | None = None
    E: int | None = None


class _AggTradePayload(msgspec.Struct):
    a: int
    p: str
    q: str
    T: int
    m: bool
    s: str
    e: str | None = None
    E: int | None = None


class _Envelope(msgspec.Struct):
    """Just enough of any frame to route it; the payload stays undecoded (``Raw``) until needed."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty when absent (msgspec has no optional Raw)
    e: str | None = None
    lastUpdateId: int | None = None  # REST depth snapshot in recorded captures
    id: int | str | None = None  # subscription ack / error reply
    u: int | None = None  # spot bookTicker (no ``e`` field)


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_trade_decoder = msgspec.json.Decoder(_TradePayload)
_agg_decoder = msgspec.json.Decoder(_AggTradePayload)

_instrument_ids: dict[tuple[str, str], str] = {}


def stream_kind(stream_name: str) -> StreamKind:
    """Kind of a combined-stream name: ``btcusdt@trade`` -> ``trade``, ``btcusdt@depth@100ms`` -> ``depth``."""
    _, _, rest = stream_name.partition("@")
    channel = rest.partition("@")[0]
    if channel == "trade":
        return "trade"
    if channel == "aggTrade":
        return "aggTrade"
    if channel.startswith("kline"):
        return "kline"
    if channel == "bookTicker":
        return "bookTicker"
    if channel.startswith("depth"):
        return "depth"
    return "other"


def instrument_id(venue: str, symbol: str) -> str:
    """``venue.SYMBOL`` (validated once per pair, then cached: this runs for every frame)."""
    key = (venue, symbol)
    cached = _instrument_ids.get(key)
    if cached is not None:
        return cached
    try:
        ident = Instrument(venue, symbol.upper()).id
    except InvalidInput as exc:
        raise DecodeError(f"bad instrument: {exc}") from exc
    if len(_instrument_ids) < 100_000:  # bounded: garbage symbols must not grow memory forever
        _instrument_ids[key] = ident
    return ident


_INF = math.inf
_MS_LOW, _MS_HIGH = 10**11, 10**14  # epoch ms between 1973 and 5138: the common case, inlined


def parse_decimal(text: str | bytes, field: str, *, positive: bool) -> float:
    """A Binance decimal string -> float64; rejects non-numbers, NaN/inf and (if asked) <= 0."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise DecodeError(f"field {field!r}: {text!r} is not a decimal number") from None
    if not math.isfinite(value):
        raise DecodeError(f"field {field!r}: {text!r} is not finite")
    if positive and value <= 0.0:
        raise DecodeError(f"field {field!r}: {text!r} must be > 0")
    return value


def make_tick(
    venue: str,
    symbol: str,
    trade_id: int,
    price: str | bytes,
    qty: str | bytes,
    buyer_is_maker: bool,
    trade_time: int,
    event_time: int | None,
    ts_ingest_us: int,
    source: Source,
) -> Tick:
    """The single place a Tick is built from exchange fields (WS payloads and dump rows alike).

    Hot path: the checks are written inline; ``parse_decimal`` only runs to word the error.
    """
    try:
        p = float(price)
        q = float(qty)
    except (TypeError, ValueError):
        p = parse_decimal(price, "price", positive=True)
        q = parse_decimal(qty, "qty", positive=True)
    if not (0.0 < p < _INF and 0.0 < q < _INF):  # also false for NaN
        parse_decimal(price, "price", positive=True)
        parse_decimal(qty, "qty", positive=True)
    if trade_id < 0:
        raise DecodeError(f"trade id {trade_id} is negative")
    if trade_time <= 0:
        raise DecodeError(f"trade time {trade_time} is not a positive epoch")
    ts_event = trade_time * 1000 if _MS_LOW <= trade_time < _MS_HIGH else epoch_to_us(trade_time)
    if event_time is None or event_time <= 0:
        ts_exchange = ts_event
    else:
        ts_exchange = event_time * 1000 if _MS_LOW <= event_time < _MS_HIGH else epoch_to_us(event_time)
    instrument = _instrument_ids.get((venue, symbol)) or instrument_id(venue, symbol)
    return Tick(
        instrument=instrument,
        trade_id=trade_id,
        price=p,
        qty=q,
        side="sell" if buyer_is_maker else "buy",
        ts_event_us=ts_event,
        ts_exchange_us=ts_exchange,
        ts_ingest_us=ts_ingest_us,
        source=source,
    )


def _tick_from_trade(p: _TradePayload, venue: str, ts_ingest_us: int, source: Source) -> Tick:
    if p.e is not None and p.e != "trade":
        raise DecodeError(f"trade payload has event type {p.e!r}")
    return make_tick(venue, p.s, p.t, p.p, p.q, p.m, p.T, p.E, ts_ingest_us, source)


def _tick_from_agg(p: _AggTradePayload, venue: str, ts_ingest_us: int, source: Source) -> Tick:
    if p.e is not None and p.e != "aggTrade":
        raise DecodeError(f"aggTrade payload has event type {p.e!r}")
    return make_tick(venue, p.s, p.a, p.p, p.q, p.m, p.T, p.E, ts_ingest_us, source)


def _check_venue(venue: str) -> None:
    if venue not in BINANCE_VENUES:
        raise InvalidInput(f"venue {venue!r} is not one of {BINANCE_VENUES}")


def parse_trade_payload(data: dict, venue: str, ts_ingest_us: int, source: Source = "live") -> Tick:
    """One ``@trade`` or ``@aggTrade`` payload (already a dict) -> Tick, or ``DecodeError``."""
    _check_venue(venue)
    if not isinstance(data, dict):
        raise DecodeError(f"trade payload must be a JSON object, got {type(data).__name__}")
    event = data.get("e")
    is_agg = event == "aggTrade" or (event is None and "a" in data and "t" not in data)
    if event not in (None, "trade", "aggTrade"):
        raise DecodeError(f"payload event type {event!r} is not a trade")
    try:
        if is_agg:
            return _tick_from_agg(msgspec.convert(data, _AggTradePayload), venue, ts_ingest_us, source)
        return _tick_from_trade(msgspec.convert(data, _TradePayload), venue, ts_ingest_us, source)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"bad {'aggTrade' if is_agg else 'trade'} payload: {exc}") from None


def _decode_payload(raw: bytes | str | msgspec.Raw, kind: str, venue: str, ts_ingest_us: int, source: Source) -> Tick:
    try:
        if kind == "trade":
            return _tick_from_trade(_trade_decoder.decode(raw), venue, ts_ingest_us, source)
        return _tick_from_agg(_agg_decoder.decode(raw), venue, ts_ingest_us, source)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DecodeError(f"bad {kind} payload: {exc}") from None


def parse_combined_frame(
    raw: bytes | str, venue: str, ts_ingest_us: int, source: Source = "live"
) -> Tick | None:
    """A combined-stream frame (or a bare payload) -> Tick; ``None`` for frames that carry no trade.

    ``None``: bookTicker, depth, kline and other channels, REST snapshot lines, subscription acks.
    ``DecodeError``: malformed JSON, a trade frame with a bad payload, or an unrecognisable object.
    """
    _check_venue(venue)
    try:
        env = _envelope_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        snippet = raw[:80] if isinstance(raw, str | bytes) else raw
        raise DecodeError(f"malformed frame ({exc}): {snippet!r}") from None
    if env.stream is not None:
        kind = stream_kind(env.stream)
        if kind not in TRADE_KINDS:
            return None
        if not env.data:
            raise DecodeError(f"frame for stream {env.stream!r} has no 'data' object")
        return _decode_payload(env.data, kind, venue, ts_ingest_us, source)
    if env.e == "trade" or env.e == "aggTrade":
        return _decode_payload(raw, env.e, venue, ts_ingest_us, source)
    if env.e in _NON_TRADE_EVENTS or env.lastUpdateId is not None or env.id is not None or env.u is not None:
        return None
    if env.e is not None:
        return None  # an event type we do not turn into ticks (e.g. a new Binance channel)
    snippet = raw[:80] if isinstance(raw, str | bytes) else raw
    raise DecodeError(f"unrecognised frame (no 'stream', 'e', 'lastUpdateId' or 'id'): {snippet!r}")
