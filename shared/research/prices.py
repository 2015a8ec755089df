"""Bar loaders for research: kline/price CSV files and the database ``bars`` table.

Every loader returns a frame indexed by ``ts_us`` (int64 microseconds UTC, strictly increasing)
with float columns ``open, high, low, close`` (close-only sources repeat the close).

File formats (plain or ``.gz``), detected from the first row:

* with a header: a time column named ``open_time``, ``timestamp``, ``ts``, ``time``, ``date`` or
  ``datetime`` and a ``close`` column; ``open``/``high``/``low`` are used when present. This covers
  the SignalBot 7-column klines (ISO ``open_time``), ``timestamp,close`` and
  ``timestamp,open,high,low,close,volume`` files and headed USD-M kline dumps;
* without a header (Binance spot kline dumps): column 0 is the open time, columns 1-4 are OHLC.

Times are epoch integers in s, ms or µs (detected by magnitude) or ISO-8601 text (UTC if no zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from shared.errors import DecodeError, InvalidInput
from shared.timeutil import datetime_to_us

TIME_COLUMNS = ("open_time", "timestamp", "ts", "time", "date", "datetime")
OHLC = ("open", "high", "low", "close")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _epoch_to_us(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    out = np.where(v >= 10**17, v // 1000, np.where(v >= 10**14, v, np.where(v >= 10**11, v * 1000, v * 1_000_000)))
    return out.astype(np.int64)


def _times_to_us(col: pd.Series, source: str) -> np.ndarray:
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().all():
        return _epoch_to_us(numeric.to_numpy(np.float64).round())
    try:
        parsed = pd.to_datetime(col.astype(str), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"{source}: cannot parse the time column ({exc})") from None
    base = pd.Timestamp("1970-01-01", tz="UTC")
    return ((parsed - base) // pd.Timedelta(microseconds=1)).to_numpy(np.int64)


def _finish(ts: np.ndarray, ohlc: dict[str, np.ndarray], source: str) -> pd.DataFrame:
    frame = pd.DataFrame(ohlc, index=pd.Index(ts, name="ts_us"))
    frame = frame.sort_index()
    if frame.index.has_duplicates:
        dup = int(frame.index[frame.index.duplicated()][0])
        raise DecodeError(f"{source}: duplicate timestamp {dup}")
    values = frame.to_numpy()
    if not np.all(np.isfinite(values)) or np.any(values <= 0.0):
        raise DecodeError(f"{source}: prices must be positive numbers")
    if len(frame) < 2:
        raise DecodeError(f"{source}: needs at least 2 rows, has {len(frame)}")
    return frame


def read_price_file(path: str | Path) -> pd.DataFrame:
    """Load one instrument's bars from a CSV file (see the module docstring for the formats)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InvalidInput(f"price file not found: {source}")
    try:
        head = pd.read_csv(path, nrows=1, header=None, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DecodeError(f"{source}: not a readable CSV file ({exc})") from None
    first = [str(v).strip() for v in head.iloc[0].tolist()]
    headerless = all(_is_number(v) for v in first)
    try:
        raw = pd.read_csv(path, header=None if headerless else 0, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DecodeError(f"{source}: {exc}") from None
    if headerless:
        if raw.shape[1] < 5:
            raise DecodeError(f"{source}: a file without header needs open_time,open,high,low,close columns")
        time_col, cols = raw.iloc[:, 0], {k: raw.iloc[:, i + 1] for i, k in enumerate(OHLC)}
    else:
        raw.columns = [str(c).strip().lower() for c in raw.columns]
        name = next((c for c in TIME_COLUMNS if c in raw.columns), None)
        if name is None or "close" not in raw.columns:
            raise DecodeError(
                f"{source}: needs a time column ({', '.join(TIME_COLUMNS)}) and a 'close' column; "
                f"found {', '.join(raw.columns)}"
            )
        time_col = raw[name]
        cols = {k: raw[k] if k in raw.columns else raw["close"] for k in OHLC}
    ohlc = {}
    for k, col in cols.items():
        values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
        if np.isnan(values).any():
            row = int(np.flatnonzero(np.isnan(values))[0])
            raise DecodeError(f"{source}: column {k!r} has a non-numeric value in data row {row + 1}")
        ohlc[k] = values
    return _finish(_times_to_us(time_col, source), ohlc, source)


def load_bars_db(conn, instrument: str, timeframe: str, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """One instrument's bars from the ``bars`` table, ``start <= ts < end`` (either bound optional)."""
    rows = conn.execute(
        "SELECT ts, open, high, low, close FROM bars WHERE instrument = %s AND timeframe = %s"
        " AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts < %s) ORDER BY ts",
        (instrument, timeframe, start, start, end, end),
    ).fetchall()
    if len(rows) < 2:
        raise InvalidInput(f"the database has {len(rows)} {timeframe} bars of {instrument} in the requested range")
    ts = np.array([datetime_to_us(r[0]) for r in rows], dtype=np.int64)
    ohlc = {k: np.array([float(r[i + 1]) for r in rows]) for i, k in enumerate(OHLC)}
    return _finish(ts, ohlc, f"bars of {instrument}")


def align_closes(frames: dict[str, pd.DataFrame], min_bars: int = 30) -> pd.DataFrame:
    """Close prices of several instruments on their common timestamps (inner join)."""
    if len(frames) < 2:
        raise InvalidInput(f"need at least 2 instruments, got {len(frames)}")
    closes = pd.concat({name: f["close"] for name, f in frames.items()}, axis=1, join="inner").sort_index()
    if len(closes) < min_bars:
        raise InvalidInput(f"the instruments share only {len(closes)} timestamps; need at least {min_bars}")
    return closes


def clip_range(frame: pd.DataFrame, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """Rows with ``start <= ts < end`` (bounds optional)."""
    lo = datetime_to_us(start) if start is not None else None
    hi = datetime_to_us(end) if end is not None else None
    mask = np.ones(len(frame), dtype=bool)
    if lo is not None:
        mask &= frame.index.to_numpy() >= lo
    if hi is not None:
        mask &= frame.index.to_numpy() < hi
    return frame[mask]


def instrument_names_from_files(paths: Sequence[str]) -> list[tuple[str, Path]]:
    """``NAME=path`` entries keep their name; a bare path is named after its file (up to the first dot)."""
    out = []
    for entry in paths:
        name, sep, p = entry.partition("=")
        if sep and name and p:
            out.append((name, Path(p)))
        else:
            out.append((Path(entry).name.split(".")[0], Path(entry)))
    return out


FUNDING_TIME_COLUMNS = ("fundingtime", "funding_time", "calc_time", *TIME_COLUMNS)
FUNDING_RATE_COLUMNS = ("fundingrate", "funding_rate", "last_funding_rate", "rate")


def read_funding_file(path: str | Path, bar_ts_us: np.ndarray) -> np.ndarray:
    """Per-bar funding rates from a CSV with a time and a rate column (Binance ``fundingTime,fundingRate``).

    Each funding event is assigned to the bar whose [start, next start) contains its time; events
    outside the bars are ignored. Bars without an event get 0.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"funding file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DecodeError(f"{path}: not a readable CSV file ({exc})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    tcol = next((c for c in FUNDING_TIME_COLUMNS if c in raw.columns), None)
    rcol = next((c for c in FUNDING_RATE_COLUMNS if c in raw.columns), None)
    if tcol is None or rcol is None:
        raise DecodeError(f"{path}: needs a funding time column and a rate column; found {', '.join(raw.columns)}")
    rates = pd.to_numeric(raw[rcol], errors="coerce").to_numpy(np.float64)
    if not np.all(np.isfinite(rates)):
        raise DecodeError(f"{path}: the rate column has a non-numeric value")
    times = _times_to_us(raw[tcol], str(path))
    bar_ts = np.asarray(bar_ts_us, dtype=np.int64)
    idx = np.searchsorted(bar_ts, times, side="right") - 1
    out = np.zeros(len(bar_ts))
    step = int(np.median(np.diff(bar_ts))) if len(bar_ts) > 1 else 0
    inside = (idx >= 0) & (times < bar_ts[-1] + step)
    np.add.at(out, idx[inside], rates[inside])
    return out
