"""File readers: dump CSVs in the official layouts (header or not, ms or µs, plain/gz/zip), recorded
frame files, sniffing of layout/venue/symbol, and malformed lines reported with their line numbers."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from services.ingest.sources import open_tick_file
from shared.errors import DecodeError, InvalidInput
from shared.messages import Tick

from .conftest import write_lines

SPOT_TRADES_MS = 1723161255342  # 2024-08-08, spot dumps in ms
SPOT_TRADES_US = 1735689600000123  # 2025-01-01, spot dumps in µs


def _rows(n: int, t0: int, seed: int = 3) -> list[dict]:
    """Trades with exchange-style decimal strings; times strictly increasing from t0 (in t0's unit)."""
    rng = random.Random(seed)
    step = 1000 if t0 > 10**14 else 1  # 1 ms either way
    out, price = [], Decimal("61837.63")
    for i in range(n):
        price += Decimal(rng.randint(-3, 3)) / 100
        out.append({
            "id": 3_735_683_259 + i, "price": f"{price:.8f}", "qty": f"{Decimal(rng.randint(1, 99999)) / 10**5:.8f}",
            "time": t0 + i * step * rng.randint(1, 50), "maker": rng.random() < 0.5,
        })  # fmt: skip
    return out


def _trade_line(r: dict, width: int, bools: tuple[str, str]) -> str:
    quote = Decimal(r["price"]) * Decimal(r["qty"])
    cells = [r["id"], r["price"], r["qty"], f"{quote:.8f}", r["time"], bools[r["maker"]]]
    return ",".join(map(str, cells + ([bools[True]] if width == 7 else [])))


def _agg_line(r: dict, width: int, bools: tuple[str, str]) -> str:
    cells = [r["id"], r["price"], r["qty"], r["id"] * 2, r["id"] * 2 + 1, r["time"], bools[r["maker"]]]
    return ",".join(map(str, cells + ([bools[True]] if width == 8 else [])))


TRADES_HEADER = "id,price,qty,quote_qty,time,is_buyer_maker"
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"


def _check_ticks(items: list[tuple[int, Tick | DecodeError]], rows: list[dict], instrument: str,
                 first_line: int) -> None:  # fmt: skip
    assert [n for n, _ in items] == list(range(first_line, first_line + len(rows)))
    for (_, tick), row in zip(items, rows, strict=True):
        assert isinstance(tick, Tick), tick
        assert tick.instrument == instrument and tick.trade_id == row["id"] and tick.source == "replay"
        assert Decimal(repr(tick.price)) == Decimal(row["price"]) and Decimal(repr(tick.qty)) == Decimal(row["qty"])
        assert tick.side == ("sell" if row["maker"] else "buy")
        # Oracle for the unit: 16-digit values are µs, 13-digit values ms (binance-public-data README).
        expected_us = row["time"] if row["time"] > 10**14 else row["time"] * 1000
        assert tick.ts_event_us == tick.ts_exchange_us == expected_us


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".zip"])
@pytest.mark.parametrize("t0", [SPOT_TRADES_MS, SPOT_TRADES_US], ids=["ms", "us"])
@pytest.mark.parametrize(
    ("kind", "width", "header", "bools"),
    [
        ("trades", 7, None, ("False", "True")),  # spot: no header, isBestMatch column
        ("trades", 6, TRADES_HEADER, ("false", "true")),  # USD-M: header, 6 columns
        ("aggTrades", 8, None, ("False", "True")),  # spot
        ("aggTrades", 7, AGG_HEADER, ("false", "true")),  # USD-M
    ],
    ids=["trades7", "trades6h", "agg8", "agg7h"],
)
def test_dump_csv_layouts(tmp_path: Path, suffix: str, t0: int, kind: str, width: int, header: str | None,
                          bools: tuple[str, str]) -> None:  # fmt: skip
    rows = _rows(40, t0)
    line = _trade_line if kind == "trades" else _agg_line
    lines = ([header] if header else []) + [line(r, width, bools) for r in rows]
    path = write_lines(tmp_path / f"ETHBTC-{kind}-2024-08-09{suffix}", lines)
    tick_file = open_tick_file(path, venue="binance-spot")
    assert tick_file.format == f"dump-{kind}" and tick_file.symbol == "ETHBTC"
    items = list(tick_file)
    _check_ticks(items, rows, "binance-spot.ETHBTC", first_line=2 if header else 1)
    assert tick_file.skipped == (1 if header else 0)
    assert tick_file.lines.bytes_done == tick_file.lines.bytes_total == path.stat().st_size


@pytest.mark.parametrize(
    ("kind", "width", "venue"),
    [("trades", 7, "binance-spot"), ("trades", 6, "binance-usdm"), ("aggTrades", 8, "binance-spot"),
     ("aggTrades", 7, "binance-usdm")],
)  # fmt: skip
def test_venue_inferred_from_official_column_counts(tmp_path: Path, kind: str, width: int, venue: str) -> None:
    line = _trade_line if kind == "trades" else _agg_line
    path = write_lines(tmp_path / f"SOLUSDT-{kind}-2024-08.csv", [line(r, width, ("false", "true")) for r in _rows(3, SPOT_TRADES_MS)])
    assert open_tick_file(path).venue == venue
    assert open_tick_file(path, venue="binance-usdm").venue == "binance-usdm"  # the option wins


def test_symbol_option_and_headerless_sniffing_without_a_dump_name(tmp_path: Path) -> None:
    rows = _rows(5, SPOT_TRADES_MS)
    trades = write_lines(tmp_path / "download.csv", [_trade_line(r, 7, ("False", "True")) for r in rows])
    aggs = write_lines(tmp_path / "download2.csv", [_agg_line(r, 8, ("False", "True")) for r in rows])
    with pytest.raises(InvalidInput, match="pass --symbol"):
        open_tick_file(trades, venue="binance-spot")
    t = open_tick_file(trades, venue="binance-spot", symbol="bnbusdt")
    a = open_tick_file(aggs, venue="binance-spot", symbol="BNBUSDT")
    assert (t.format, a.format, t.symbol) == ("dump-trades", "dump-aggTrades", "BNBUSDT")
    _check_ticks(list(t), rows, "binance-spot.BNBUSDT", 1)
    _check_ticks(list(a), rows, "binance-spot.BNBUSDT", 1)


def test_malformed_dump_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    good = _rows(4, SPOT_TRADES_MS)
    lines = [
        _trade_line(good[0], 7, ("False", "True")),  # 1 ok
        "3735683300,abc,0.1,1,1723161255342,True,True",  # 2 bad price
        "3735683301,61000.1,0.1",  # 3 too few columns
        "",  # 4 blank: skipped silently
        "garbage that is not csv",  # 5 garbage
        _trade_line(good[1], 7, ("False", "True")),  # 6 ok
        "3735683302,61000.1,0.1,1,1723161255342,maybe,True",  # 7 bad flag
        "x12,61000.1,0.1,1,1723161255342,True,True",  # 8 bad id
        "3735683303,61000.1,-0.1,1,1723161255342,True,True",  # 9 negative qty
        "3735683304,61000.1,0.1,1,17231612553x2,True,True",  # 10 bad time
        _trade_line(good[2], 7, ("False", "True")),  # 11 ok
    ]
    path = write_lines(tmp_path / "BTCUSDT-trades-2024-08-09.csv.gz", lines)
    items = list(open_tick_file(path, venue="binance-spot"))
    errors = {n: str(e) for n, e in items if isinstance(e, DecodeError)}
    ticks = [(n, t) for n, t in items if isinstance(t, Tick)]
    assert [n for n, _ in ticks] == [1, 6, 11]
    assert [t.trade_id for _, t in ticks] == [good[0]["id"], good[1]["id"], good[2]["id"]]
    assert sorted(errors) == [2, 3, 5, 7, 8, 9, 10]
    assert "'abc' is not a decimal number" in errors[2]
    assert "expected 7 columns, got 3" in errors[3]
    assert "got 1" in errors[5]
    assert "b'maybe' is not true/false" in errors[7]
    assert "trade id b'x12' is not an integer" in errors[8]
    assert "must be > 0" in errors[9]
    assert "time b'17231612553x2' is not an integer" in errors[10]


def test_garbage_first_line_is_a_malformed_line_not_a_header(tmp_path: Path) -> None:
    rows = _rows(2, SPOT_TRADES_MS)
    path = write_lines(tmp_path / "BTCUSDT-trades-2024-08-09.csv",
                       ["hello,world"] + [_trade_line(r, 7, ("False", "True")) for r in rows])  # fmt: skip
    items = list(open_tick_file(path, venue="binance-spot"))
    assert isinstance(items[0][1], DecodeError) and items[0][0] == 1
    assert "neither a header nor a trade row" in str(items[0][1])
    _check_ticks(items[1:], rows, "binance-spot.BTCUSDT", 2)


def test_unusable_files_are_rejected_up_front(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        open_tick_file(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="empty"):
        open_tick_file(write_lines(tmp_path / "BTCUSDT-trades-x.csv", []))
    with pytest.raises(InvalidInput, match="cannot tell spot from USD-M"):
        open_tick_file(write_lines(tmp_path / "capture.jsonl", ['{"stream":"a@trade","data":{}}']))
    with pytest.raises(InvalidInput, match="header lacks columns"):
        open_tick_file(write_lines(tmp_path / "spot_x.csv", ["recv_ts_ns,e,E,s"]))
    import zipfile

    two = tmp_path / "BTCUSDT-trades-2024-08-09.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "1,2\n")
        archive.writestr("b.csv", "1,2\n")
    with pytest.raises(InvalidInput, match="expected one CSV inside the zip, found 2"):
        open_tick_file(two, venue="binance-spot")


def test_recorded_frame_formats_in_tmp_files(tmp_path: Path) -> None:
    frame = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161601438,"s":"BTCUSDT","t":7,'
             '"p":"61685.99000000","q":"0.00017000","T":1723161601437,"m":true,"M":true}}')  # fmt: skip
    book = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}'
    cases = {
        "ws-hftbacktest": ["1723161600000000000 " + book, "1723161600100000000 " + frame, "1723161600200000000 {bad"],
        "ws-cryptofeed": ["wss://stream.binance.com:9443/stream?streams=btcusdt@trade <-> 1.0",
                          "1633998512.06: " + book, "1633998512.56: " + frame, "1633998512.57: {bad"],
        "ws-jsonl": [book, frame, "{bad"],
    }  # fmt: skip
    for fmt, lines in cases.items():
        path = write_lines(tmp_path / f"cap_{fmt}.gz", lines)
        tick_file = open_tick_file(path, venue=None if fmt == "ws-cryptofeed" else "binance-spot")
        assert tick_file.format == fmt and tick_file.venue == "binance-spot"
        items = list(tick_file)
        assert [(n, type(x).__name__) for n, x in items] == [(len(lines) - 1, "Tick"), (len(lines), "DecodeError")]
        tick = items[0][1]
        assert isinstance(tick, Tick) and (tick.trade_id, tick.price, tick.side) == (7, 61685.99, "sell")
        assert tick_file.skipped == len(lines) - 2  # the bookTicker frame (and the URL line)


PROVENANCE_TRADE_FRAMES = {  # ../shared/data/binance/PROVENANCE.md, section 3a
    "hftbacktest/spot/btcusdt_20240808.gz": ("binance-spot", 9_757),
    "hftbacktest/usdm/ethusdt_20240808.gz": ("binance-usdm", 14_076),
}


@pytest.mark.real_data
def test_real_files_are_sniffed_and_counted(data_dir: Path) -> None:
    root = data_dir / "binance"
    for path in sorted((root / "trades").glob("*.csv.gz")):
        tf = open_tick_file(path)
        assert tf.format == "ws-csv" and tf.venue == ("binance-usdm" if path.name.startswith("usdm_") else "binance-spot")
    for path in sorted((root / "ws").glob("*.jsonl")):
        assert open_tick_file(path).format == "ws-jsonl"
    cryptofeed = root / "ws" / "raw_captures" / "cryptofeed"
    assert open_tick_file(cryptofeed / "BINANCE.ws.1.0").venue == "binance-spot"  # from the URL line
    assert open_tick_file(cryptofeed / "BINANCE_FUTURES.ws.1.0").venue == "binance-usdm"
    for rel, (venue, trades) in PROVENANCE_TRADE_FRAMES.items():
        tf = open_tick_file(root / "ws" / "raw_captures" / rel)
        assert (tf.format, tf.venue) == ("ws-hftbacktest", venue)
        items = list(tf)
        assert all(isinstance(t, Tick) for _, t in items)
        assert len(items) == trades
        ids = [t.trade_id for _, t in items]
        assert ids == list(range(ids[0], ids[0] + trades))  # PROVENANCE: ids contiguous
