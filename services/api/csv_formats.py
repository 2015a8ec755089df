"""CSV layouts accepted by the upload endpoints, and row-by-row parsing into ticks or OHLC bars.

Layouts (detected from the first row; a header is recognised when its first cell is not a time):

* Binance dumps without header: spot trades (7 columns: id, price, qty, quote_qty, time,
  is_buyer_maker, is_best_match), spot aggTrades (8: a, p, q, first_id, last_id, time, m, M), USD-M
  trades (6) and aggTrades (7, last column a boolean), klines (12: open_time, o, h, l, c, volume,
  close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore).
* Any file with a header, matched through ``ALIASES`` (Binance's own headers included): ticks need
  timestamp, price and qty (symbol, trade id, side or is_buyer_maker optional); bars need timestamp,
  open, high, low, close, volume (symbol, buy_volume, trades optional).
* Generic headerless: ticks ``timestamp,symbol,price,qty`` or ``timestamp,price,qty``; bars
  ``timestamp,open,high,low,close,volume``.

Times: integer epochs in s, ms, µs or ns (by magnitude, as Binance switched spot dumps to µs),
decimal epoch seconds, or ISO-8601 (no zone = UTC). Without an id column a tick's trade id is its
line number; without side information the aggressor side follows the tick rule (up-tick = buy).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from shared.timeutil import datetime_to_us

Kind = Literal["ticks", "bars"]

ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "transact_time", "trade_time", "open_time",
                  "timestamp_us", "ts_us", "t"),
    "symbol": ("symbol", "sym", "ticker", "instrument", "s"),
    "price": ("price", "px", "p", "last", "trade_price"),
    "qty": ("qty", "quantity", "size", "amount", "volume", "q", "vol", "base_qty"),
    "trade_id": ("trade_id", "id", "agg_trade_id", "tid", "a"),
    "side": ("side", "taker_side", "aggressor"),
    "is_buyer_maker": ("is_buyer_maker", "buyer_maker", "m"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "base_volume", "qty", "quantity", "amount"),
    "buy_volume": ("buy_volume", "taker_buy_volume", "taker_buy_base_asset_volume", "taker_buy_base_volume"),
    "trades": ("trades", "count", "number_of_trades", "n_trades", "trade_count"),
}  # fmt: skip
REQUIRED: dict[str, tuple[str, ...]] = {
    "ticks": ("timestamp", "price", "qty"),
    "bars": ("timestamp", "open", "high", "low", "close", "volume"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "ticks": ("symbol", "trade_id", "side", "is_buyer_maker"),
    "bars": ("symbol", "buy_volume", "trades"),
}
_BOOL = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False}
_SIDES = {"buy": 1, "b": 1, "1": 1, "+1": 1, "bid": 1, "sell": -1, "s": -1, "-1": -1, "ask": -1}
_INT = re.compile(r"^-?\d+$")


class RowError(ValueError):
    """One row could not be used; the message says which column and why."""


@dataclass(frozen=True, slots=True)
class TickRow:
    ts_us: int
    trade_id: int | None
    price: float
    qty: float
    side: int | None  # +1 buy aggressor, -1 sell, None unknown (tick rule applied later)
    symbol: str | None


@dataclass(frozen=True, slots=True)
class BarRow:
    ts_us: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    buy_volume: float
    trades: int
    symbol: str | None


@dataclass(frozen=True)
class Layout:
    name: str
    header: bool
    columns: dict[str, int]  # canonical field -> column index
    width: int

    def parser(self, kind: Kind) -> Callable[[list[str]], TickRow | BarRow]:
        return (lambda row: parse_tick(row, self)) if kind == "ticks" else (lambda row: parse_bar(row, self))


def normalise_header(cell: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", cell.strip().lower()).strip("_")


def parse_time_us(text: str) -> int:
    s = text.strip()
    if _INT.match(s):
        v = int(s)
        if v >= 10**17:
            return v // 1000
        if v >= 10**14:
            return v
        if v >= 10**11:
            return v * 1000
        return v * 1_000_000
    try:
        f = float(s)
    except ValueError:
        f = None
    if f is not None:
        if not math.isfinite(f):
            raise RowError(f"timestamp {text!r} is not a time")
        scale = 1e-3 if f >= 1e17 else 1.0 if f >= 1e14 else 1e3 if f >= 1e11 else 1e6
        return round(f * scale)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise RowError(f"timestamp {text!r} is neither an epoch number nor ISO-8601") from None
    return datetime_to_us(dt if dt.tzinfo else dt.replace(tzinfo=UTC))


def _looks_like_time(cell: str) -> bool:
    try:
        parse_time_us(cell)
    except RowError:
        return False
    return True


def detect(first: list[str], kind: Kind) -> Layout:
    """The layout of a file from its first non-empty row; raises ``RowError`` naming what is missing."""
    cells = [c.strip() for c in first]
    if cells and not _looks_like_time(cells[0]):
        return _from_header(cells, kind)
    n = len(cells)
    is_bool = [c.lower() in ("true", "false") for c in cells]
    if kind == "ticks":
        if n == 8 and is_bool[6]:
            return Layout("binance-aggTrades", False, {"trade_id": 0, "price": 1, "qty": 2, "timestamp": 5,
                                                       "is_buyer_maker": 6}, n)  # fmt: skip
        if n == 7 and is_bool[5]:
            return Layout("binance-trades", False, {"trade_id": 0, "price": 1, "qty": 2, "timestamp": 4,
                                                    "is_buyer_maker": 5}, n)  # fmt: skip
        if n == 7 and is_bool[6]:
            return Layout("binance-usdm-aggTrades", False, {"trade_id": 0, "price": 1, "qty": 2, "timestamp": 5,
                                                            "is_buyer_maker": 6}, n)  # fmt: skip
        if n == 6 and is_bool[5]:
            return Layout("binance-usdm-trades", False, {"trade_id": 0, "price": 1, "qty": 2, "timestamp": 4,
                                                         "is_buyer_maker": 5}, n)  # fmt: skip
        if n == 4:
            return Layout("generic-ticks", False, {"timestamp": 0, "symbol": 1, "price": 2, "qty": 3}, n)
        if n == 3:
            return Layout("generic-ticks", False, {"timestamp": 0, "price": 1, "qty": 2}, n)
    else:
        if n >= 11:
            return Layout("binance-klines", False, {"timestamp": 0, "open": 1, "high": 2, "low": 3, "close": 4,
                                                    "volume": 5, "trades": 8, "buy_volume": 9}, n)  # fmt: skip
        if n == 6:
            return Layout("generic-bars", False, {"timestamp": 0, "open": 1, "high": 2, "low": 3, "close": 4,
                                                  "volume": 5}, n)  # fmt: skip
    raise RowError(f"unrecognised {kind} layout without header ({n} columns); add a header row naming the columns")


def _from_header(cells: list[str], kind: Kind) -> Layout:
    names = [normalise_header(c) for c in cells]
    columns: dict[str, int] = {}
    for field in REQUIRED[kind] + OPTIONAL[kind]:
        for alias in ALIASES[field]:
            if alias in names and names.index(alias) not in columns.values():
                columns[field] = names.index(alias)
                break
    missing = [f for f in REQUIRED[kind] if f not in columns]
    if missing:
        raise RowError(f"header lacks {', '.join(missing)} (found: {', '.join(names)})")
    return Layout(f"header-{kind}", True, columns, len(cells))


def _cell(row: list[str], layout: Layout, field: str) -> str | None:
    i = layout.columns.get(field)
    if i is None:
        return None
    if i >= len(row):
        raise RowError(f"{field}: missing (row has {len(row)} columns, expected {layout.width})")
    return row[i].strip()


def _number(row: list[str], layout: Layout, field: str, *, positive: bool = False, minimum: float | None = None) -> float:
    text = _cell(row, layout, field)
    try:
        v = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RowError(f"{field}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise RowError(f"{field}: {text!r} is not finite")
    if positive and v <= 0:
        raise RowError(f"{field}: must be positive, got {text}")
    if minimum is not None and v < minimum:
        raise RowError(f"{field}: must be >= {minimum:g}, got {text}")
    return v


def _time(row: list[str], layout: Layout) -> int:
    return parse_time_us(_cell(row, layout, "timestamp") or "")


def parse_tick(row: list[str], layout: Layout) -> TickRow:
    ts = _time(row, layout)
    price = _number(row, layout, "price", positive=True)
    qty = _number(row, layout, "qty", positive=True)
    trade_id = None
    raw_id = _cell(row, layout, "trade_id")
    if raw_id is not None:
        if not _INT.match(raw_id) or int(raw_id) < 0 or int(raw_id) >= 2**63:
            raise RowError(f"trade_id: {raw_id!r} is not a non-negative integer")
        trade_id = int(raw_id)
    side = None
    raw_side = _cell(row, layout, "side")
    raw_maker = _cell(row, layout, "is_buyer_maker")
    if raw_side:
        side = _SIDES.get(raw_side.lower())
        if side is None:
            raise RowError(f"side: {raw_side!r} is not buy or sell")
    elif raw_maker:
        maker = _BOOL.get(raw_maker.lower())
        if maker is None:
            raise RowError(f"is_buyer_maker: {raw_maker!r} is not true or false")
        side = -1 if maker else 1  # the buyer was the maker: the aggressor sold
    return TickRow(ts, trade_id, price, qty, side, _cell(row, layout, "symbol") or None)


def parse_bar(row: list[str], layout: Layout) -> BarRow:
    ts = _time(row, layout)
    o, h, lo, c = (_number(row, layout, f, positive=True) for f in ("open", "high", "low", "close"))
    if h < max(o, c, lo) or lo > min(o, c):
        raise RowError(f"high/low: need low <= open, close <= high (open {o}, high {h}, low {lo}, close {c})")
    volume = _number(row, layout, "volume", minimum=0.0)
    buy = _number(row, layout, "buy_volume", minimum=0.0) if "buy_volume" in layout.columns else 0.0
    if buy > volume:
        raise RowError(f"buy_volume: {buy} exceeds volume {volume}")
    trades = 0
    raw_trades = _cell(row, layout, "trades")
    if raw_trades is not None:
        if not _INT.match(raw_trades) or not 0 <= int(raw_trades) < 2**31:
            raise RowError(f"trades: {raw_trades!r} is not a non-negative integer")
        trades = int(raw_trades)
    return BarRow(ts, o, h, lo, c, volume, buy, trades, _cell(row, layout, "symbol") or None)
