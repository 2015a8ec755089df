"""Normalizer: every recorded frame kind, checked field by field against the raw JSON (json + Decimal
as the oracle), and a table of malformed frames that must raise DecodeError with a precise message."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from services.ingest.normalize import parse_combined_frame, parse_trade_payload, stream_kind
from shared.errors import DecodeError, InvalidInput
from shared.messages import Tick

INGEST_US = 1_700_000_000_123_456


def _venue(path: Path) -> str:
    text = str(path).lower()
    return "binance-usdm" if ("usdm" in text or "futures" in text) else "binance-spot"


def _assert_matches_raw(tick: Tick, frame: dict, venue: str) -> None:
    data = frame["data"]
    agg = stream_kind(frame["stream"]) == "aggTrade"
    assert tick.instrument == f"{venue}.{data['s']}"
    assert tick.trade_id == (data["a"] if agg else data["t"])
    # The float must print back as the exchange's decimal (value-exact, trailing zeros aside).
    assert Decimal(repr(tick.price)) == Decimal(data["p"])
    assert Decimal(repr(tick.qty)) == Decimal(data["q"])
    assert tick.side == ("sell" if data["m"] else "buy")  # m: buyer is maker -> the aggressor sold
    assert tick.ts_event_us == data["T"] * 1000
    assert tick.ts_exchange_us == data["E"] * 1000
    assert tick.ts_ingest_us == INGEST_US
    assert tick.source == "live"


def _check_frames(lines: list[bytes], venue: str) -> tuple[int, int]:
    """Parse every frame both ways; return (trade frames, ticks produced)."""
    trades = ticks = 0
    for raw in lines:
        frame = json.loads(raw)
        tick = parse_combined_frame(raw, venue, INGEST_US)
        kind = stream_kind(frame["stream"]) if "stream" in frame else "other"
        if kind in ("trade", "aggTrade"):
            trades += 1
            assert tick is not None, raw
            _assert_matches_raw(tick, frame, venue)
            ticks += 1
        else:
            assert tick is None, raw
    return trades, ticks


@pytest.mark.real_data
def test_every_jsonl_sample_frame_normalizes_like_the_raw_json(data_dir: Path) -> None:
    files = sorted((data_dir / "binance" / "ws").glob("*.jsonl"))
    assert files, "no JSONL samples found"
    kinds_seen: set[str] = set()
    for path in files:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        kinds_seen |= {stream_kind(json.loads(line)["stream"]) for line in lines}
        trades, ticks = _check_frames(lines, _venue(path))
        assert ticks == trades
    assert {"trade", "aggTrade", "kline", "bookTicker", "depth"} <= kinds_seen


@pytest.mark.real_data
@pytest.mark.slow
def test_raw_captures_hftbacktest_and_cryptofeed(data_dir: Path) -> None:
    root = data_dir / "binance" / "ws" / "raw_captures"
    # hftbacktest: "<recv_ts_ns> <frame>", one spot and one USD-M capture (incl. the REST snapshot line).
    for rel in ("hftbacktest/spot/ethusdt_20240808.gz", "hftbacktest/usdm/ethusdt_20240808.gz"):
        path = root / rel
        frames = [line.split(b" ", 1)[1] for line in gzip.decompress(path.read_bytes()).splitlines() if line]
        snapshot = [f for f in frames if b'"lastUpdateId"' in f[:20]]
        assert snapshot and all(parse_combined_frame(f, _venue(path), INGEST_US) is None for f in snapshot)
        trades, ticks = _check_frames([f for f in frames if f not in snapshot], _venue(path))
        assert trades > 1000 and ticks == trades
    # cryptofeed: URL line, then "<recv_s>: <frame>".
    for name, venue in (("BINANCE.ws.1.0", "binance-spot"), ("BINANCE_FUTURES.ws.1.0", "binance-usdm")):
        lines = (root / "cryptofeed" / name).read_bytes().splitlines()
        assert lines[0].startswith(b"wss://")
        frames = [line.split(b": ", 1)[1] for line in lines[1:] if line]
        trades, ticks = _check_frames(frames, venue)
        assert ticks == trades > 0


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("btcusdt@trade", "trade"),
        ("nknusdt@aggTrade", "aggTrade"),
        ("ethusdt@kline_1m", "kline"),
        ("btcusdt@bookTicker", "bookTicker"),
        ("btcusdt@depth@100ms", "depth"),
        ("btcusdt@depth20", "depth"),
        ("btcusdt@markPrice@1s", "other"),
        ("!miniTicker@arr", "other"),
    ],
)
def test_stream_kind(name: str, kind: str) -> None:
    assert stream_kind(name) == kind


SPOT_TRADE = {"e": "trade", "E": 1723161601438, "s": "BTCUSDT", "t": 3735693016, "p": "61685.99000000",
              "q": "0.00017000", "T": 1723161601437, "m": True, "M": True}  # fmt: skip
USDM_TRADE = {"e": "trade", "E": 1723161256322, "T": 1723161256321, "s": "BTCUSDT", "t": 5266583935,
              "p": "61800.30", "q": "0.006", "X": "MARKET", "m": False}  # fmt: skip
AGG_TRADE = {"e": "aggTrade", "E": 1626992741575, "a": 16599292, "s": "CTKUSDT", "p": "1.01100", "q": "10",
             "f": 23961322, "l": 23961323, "T": 1626992741421, "m": False}  # fmt: skip


def _frame(stream: str, data: object) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


@pytest.mark.parametrize(
    ("payload", "venue", "expected"),
    [
        (SPOT_TRADE, "binance-spot", ("binance-spot.BTCUSDT", 3735693016, "61685.99", "0.00017", "sell")),
        (USDM_TRADE, "binance-usdm", ("binance-usdm.BTCUSDT", 5266583935, "61800.30", "0.006", "buy")),
        (AGG_TRADE, "binance-usdm", ("binance-usdm.CTKUSDT", 16599292, "1.011", "10", "buy")),
    ],
)
def test_parse_trade_payload_dict(payload: dict, venue: str, expected: tuple) -> None:
    tick = parse_trade_payload(payload, venue, INGEST_US, source="backfill")
    instrument, trade_id, price, qty, side = expected
    assert (tick.instrument, tick.trade_id, tick.side, tick.source) == (instrument, trade_id, side, "backfill")
    assert Decimal(repr(tick.price)) == Decimal(price) and Decimal(repr(tick.qty)) == Decimal(qty)
    assert tick.ts_event_us == payload["T"] * 1000 and tick.ts_exchange_us == payload["E"] * 1000
    # The dict path and the bytes path are one normalizer.
    stream = "x@aggTrade" if "a" in payload else "x@trade"
    assert parse_combined_frame(_frame(stream, payload), venue, INGEST_US, source="backfill") == tick
    assert parse_combined_frame(json.dumps(payload), venue, INGEST_US, source="backfill") == tick  # bare payload


def test_microsecond_trade_times_are_detected() -> None:
    # Spot streams opened with timeUnit=MICROSECOND send µs epochs.
    tick = parse_trade_payload({**SPOT_TRADE, "T": 1723161601437123, "E": 1723161601438456}, "binance-spot", 1)
    assert (tick.ts_event_us, tick.ts_exchange_us) == (1723161601437123, 1723161601438456)


@pytest.mark.parametrize(
    "raw",
    [
        _frame("btcusdt@bookTicker", {"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}),
        _frame("btcusdt@depth@100ms", {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [], "a": []}),
        _frame("btcusdt@kline_1m", {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {}}),
        _frame("btcusdt@markPrice", {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "1"}),
        b'{"result":null,"id":1}',
        b'{"lastUpdateId":50093239188,"bids":[["1","2"]],"asks":[]}',
        b'{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}',
        b'{"e":"kline","E":1,"s":"BTCUSDT","k":{}}',
        b'{"e":"someNewEvent","E":1}',
    ],
)
def test_frames_without_trades_return_none(raw: bytes) -> None:
    assert parse_combined_frame(raw, "binance-spot", INGEST_US) is None


def _trade(**changes: object) -> bytes:
    data = {**SPOT_TRADE, **changes}
    return _frame("btcusdt@trade", {k: v for k, v in data.items() if v is not ...})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "malformed frame"),
        (b"{", "malformed frame"),
        (b"\xff\xfe{}", "malformed frame"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b"null", "Expected `object`, got `null`"),
        (b'{"foo": 1}', "unrecognised frame"),
        (b'{"stream": "btcusdt@trade"}', "has no 'data' object"),
        (_frame("btcusdt@trade", "text"), "Expected `object`, got `str`"),
        (_frame("btcusdt@trade", None), "Expected `object`, got `null`"),
        (_trade(p="abc"), "field 'price': 'abc' is not a decimal number"),
        (_trade(p="nan"), "field 'price': 'nan' is not finite"),
        (_trade(p="-61685.99"), "field 'price': '-61685.99' must be > 0"),
        (_trade(q="0.00000000"), "field 'qty': '0.00000000' must be > 0"),
        (_trade(q="-1"), "field 'qty': '-1' must be > 0"),
        (_trade(p=61685.99), "Expected `str`, got `float` - at `$.p`"),
        (_trade(t="3735693016"), "Expected `int`, got `str` - at `$.t`"),
        (_trade(m="true"), "Expected `bool`, got `str` - at `$.m`"),
        (_trade(T=...), "missing required field `T`"),
        (_trade(s=...), "missing required field `s`"),
        (_trade(t=-5), "trade id -5 is negative"),
        (_trade(T=0), "trade time 0 is not a positive epoch"),
        (_trade(s="btc-usdt!"), "bad instrument"),
        (_trade(e="aggTrade"), "event type 'aggTrade'"),
        (_frame("x@aggTrade", {**AGG_TRADE, "a": None}), "Expected `int`, got `null` - at `$.a`"),
        (b'{"e":"trade","s":"BTCUSDT"}', "missing required field"),
    ],
)
def test_malformed_frames_raise_decode_error(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_combined_frame(raw, "binance-spot", INGEST_US)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["not", "a", "dict"], "must be a JSON object, got list"),
        ({**SPOT_TRADE, "e": "kline"}, "event type 'kline' is not a trade"),
        ({k: v for k, v in SPOT_TRADE.items() if k != "p"}, "missing required field `p`"),
        ({**AGG_TRADE, "q": "abc"}, "field 'qty': 'abc' is not a decimal number"),
    ],
)
def test_parse_trade_payload_rejects(payload: object, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_trade_payload(payload, "binance-spot", INGEST_US)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_unknown_venue_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="venue 'binance-coinm'"):
        parse_trade_payload(SPOT_TRADE, "binance-coinm", INGEST_US)
