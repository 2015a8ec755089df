"""Read a price file of any layout the project meets and turn two of them into aligned bars.

Layouts recognised (gzip or plain, detected by content, not by file name):

- Binance dump **trades** (``id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]``) and
  **aggTrades** (``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
  is_buyer_maker[,is_best_match]``), with a header (USD-M) or without (spot);
- official 12-column **klines** (``open_time,open,high,low,close,volume,close_time,...``), with or
  without header, and the SignalBot 7-column variant with an ISO ``open_time`` header;
- recorded WebSocket trade CSVs with Binance field names (``T`` trade time, ``p`` price);
- a generic ``timestamp,price`` CSV (header optional).

Epoch timestamps may be s, ms, µs or ns (detected per value, since Binance spot dumps switched
to µs in 2025); text timestamps are parsed as ISO 8601 and taken as UTC. Klines are labelled by
their open time and priced by their close, so a bar's last price is the kline's close.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from shared.errors import DecodeError, InvalidInput
from shared.timeframes import timeframe_us

# Header names, in order of preference. Single letters are Binance WebSocket field names and are
# matched case-sensitively ("T" is the trade time, "t" the trade id).
_TIME_NAMES = ("transact_time", "open_time", "time", "timestamp", "ts", "datetime", "date", "T")
_PRICE_NAMES = ("close", "price", "p")
# Headerless layouts by column count -> (time column, price column).
_HEADERLESS = {
    2: (0, 1),  # timestamp,price
    6: (4, 1),  # USD-M trades: id,price,qty,quote_qty,time,is_buyer_maker
    8: (5, 1),  # spot aggTrades: agg_id,price,qty,first_id,last_id,time,is_buyer_maker,is_best_match
    12: (0, 4),  # klines: open_time,open,high,low,close,...
}


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _sniff(path: Path) -> tuple[bool, int, int, int]:
    """(has_header, n_columns, time column, price column) from the first two rows."""
    try:
        with _open_text(path) as fh:
            rows = [row for _, row in zip(range(2), csv.reader(fh), strict=False)]
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise DecodeError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DecodeError(f"{path}: the file is empty")
    first = [cell.strip() for cell in rows[0]]
    if not any(_is_number(cell) for cell in first):  # a header row holds names only
        return (True, len(first), *_columns_from_header(path, first))
    return (False, len(first), *_columns_from_count(path, rows))


def _columns_from_header(path: Path, header: list[str]) -> tuple[int, int]:
    def find(names: tuple[str, ...]) -> int | None:
        for name in names:
            for i, col in enumerate(header):
                if col == name or (len(name) > 1 and col.lower() == name):
                    return i
        return None

    time_col, price_col = find(_TIME_NAMES), find(_PRICE_NAMES)
    if time_col is None or price_col is None:
        raise DecodeError(
            f"{path}: unrecognised header {','.join(header)!r}; expected a time column "
            f"({', '.join(_TIME_NAMES)}) and a price column ({', '.join(_PRICE_NAMES)})"
        )
    return time_col, price_col


def _columns_from_count(path: Path, rows: list[list[str]]) -> tuple[int, int]:
    row = [cell.strip() for cell in rows[0]]
    if len(row) == 7:
        # Spot trades (time at 4, bool at 5) or USD-M aggTrades without header (time at 5, bool at 6).
        if row[5].lower() in ("true", "false"):
            return 4, 1
        if row[6].lower() in ("true", "false"):
            return 5, 1
    if len(row) in _HEADERLESS:
        return _HEADERLESS[len(row)]
    raise DecodeError(
        f"{path}: unrecognised headerless layout with {len(row)} columns; expected Binance trades (6/7), "
        "aggTrades (7/8), klines (12) or timestamp,price (2)"
    )


def _epoch_to_datetime(values: np.ndarray) -> pd.DatetimeIndex:
    """Epoch integers in s / ms / µs / ns (by magnitude, per value) -> UTC timestamps."""
    ints = values.astype(np.int64)
    scale = np.select(
        [ints >= 10**17, ints >= 10**14, ints >= 10**11],
        [np.int64(1), np.int64(1_000), np.int64(1_000_000)],
        default=np.int64(1_000_000_000),
    )
    with np.errstate(over="raise"):
        nanos = ints * scale
    return pd.DatetimeIndex(pd.to_datetime(nanos, unit="ns", utc=True))


def read_prices(path: str | Path) -> pd.Series:
    """All (timestamp, price) observations of one file, sorted by time (stable), as a float Series."""
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"{path}: no such file")
    has_header, _, time_col, price_col = _sniff(path)
    try:
        frame = pd.read_csv(
            path, header=None, skiprows=1 if has_header else 0, usecols=[time_col, price_col], dtype=str,
            compression="gzip" if _is_gzip(path) else None, skipinitialspace=True,
        )
    except (ValueError, OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DecodeError(f"{path}: could not parse as CSV ({exc})") from None
    frame = frame[[time_col, price_col]]  # read_csv keeps file order, not usecols order
    frame.columns = ["time", "price"]
    if frame.empty:
        raise DecodeError(f"{path}: no data rows")
    prices = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(prices) | (prices <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DecodeError(f"{path}: invalid price {frame['price'].iloc[row]!r} in data row {row + 1}")
    index = _parse_times(path, frame["time"])
    series = pd.Series(prices, index=index, name=path.name)
    return series.sort_index(kind="stable")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as raw:
        return raw.read(2) == b"\x1f\x8b"


def _parse_times(path: Path, times: pd.Series) -> pd.DatetimeIndex:
    numeric = pd.to_numeric(times, errors="coerce")
    if numeric.notna().all():
        try:
            return _epoch_to_datetime(numeric.to_numpy(dtype=np.float64))
        except (FloatingPointError, OverflowError, ValueError) as exc:
            raise DecodeError(f"{path}: epoch timestamps out of range ({exc})") from None
    try:
        parsed = pd.to_datetime(times, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"{path}: unparseable timestamp ({exc})") from None
    return pd.DatetimeIndex(parsed)


def resample_last(prices: pd.Series, timeframe: str) -> pd.Series:
    """Last price per UTC bucket (left-labelled), on a regular grid with empty buckets forward-filled."""
    step_us = timeframe_us(timeframe)
    if step_us == 0:
        raise InvalidInput("timeframe 'tick' has no buckets; choose a bar timeframe such as 1s or 1m")
    bars = prices.resample(pd.Timedelta(microseconds=step_us), label="left", closed="left").last()
    return bars.ffill()


def aligned_bars(y: pd.Series, x: pd.Series, timeframe: str) -> pd.DataFrame:
    """Both legs resampled and aligned on their common bucket range: columns ``y`` and ``x``.

    The union of bucket starts within the overlap, each leg forward-filled; buckets before the
    later first observation and after the earlier last one are dropped (no stale extrapolation).
    """
    by, bx = resample_last(y, timeframe), resample_last(x, timeframe)
    start, end = max(by.index[0], bx.index[0]), min(by.index[-1], bx.index[-1])
    if start > end:
        raise InvalidInput(
            f"the two files do not overlap in time: y covers {by.index[0]} .. {by.index[-1]}, "
            f"x covers {bx.index[0]} .. {bx.index[-1]}"
        )
    both = pd.concat({"y": by, "x": bx}, axis=1, join="outer", sort=True).ffill()
    return both.loc[start:end].dropna()
