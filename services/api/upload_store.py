"""Storing an uploaded CSV: validate row by row, COPY valid rows in batches, resample uploaded ticks into bars.

Runs in a worker thread with its own (synchronous) connection and one transaction: the upload is
stored completely or not at all. Memory stays flat whatever the file size: rows go to the database
in batches of ``BATCH_ROWS``, and the tick-to-bar pass reads the stored ticks back through a
server-side cursor in (ts, trade_id) order, so files need not be sorted and re-uploads converge.
Bars of uploaded ticks use ``services.analytics.bars.BarAccumulator`` (exact 1e-8 volume sums),
the live worker's own rule, so uploaded data is analysable exactly like live data.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import psycopg

from services.analytics.bars import BarAccumulator, qty_units
from services.api.csv_formats import BarRow, Kind, Layout, RowError, TickRow, detect
from shared.errors import InvalidInput
from shared.instruments import Instrument
from shared.timeframes import timeframe_us
from shared.timeutil import us_to_datetime

UPLOAD_VENUE = "upload"
UPLOAD_SOURCE = "upload"  # ticks.source of uploaded trades
BATCH_ROWS = 10_000
MAX_REPORTED_ERRORS = 20

_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS up_ticks (LIKE ticks INCLUDING DEFAULTS) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS up_bars (LIKE bars INCLUDING DEFAULTS) ON COMMIT DROP;
"""
_TICK_COLS = "instrument, ts, trade_id, price, qty, side, source"
_BAR_COLS = "instrument, timeframe, ts, open, high, low, close, volume, buy_volume, trades"
_UPSERT_BARS = (
    f"INSERT INTO bars ({_BAR_COLS}) SELECT {_BAR_COLS} FROM up_bars ON CONFLICT (instrument, timeframe, ts) "
    "DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, "
    "volume = EXCLUDED.volume, buy_volume = EXCLUDED.buy_volume, trades = EXCLUDED.trades"
)


@dataclass
class ImportReport:
    kind: str
    layout: str | None = None
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    stored: int = 0
    instruments: list[str] = field(default_factory=list)
    bars_written: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, problem: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "problem": problem})


def open_text(raw: IO[bytes]) -> io.TextIOWrapper:
    """Plain, gzip or zip (first member) CSV, sniffed from the magic bytes, as text."""
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif head == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as exc:
            raise InvalidInput(f"the zip archive is unreadable: {exc}") from None
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise InvalidInput("the zip archive is empty")
        stream = archive.open(members[0])
    else:
        stream = raw
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")


def _instrument(symbol: str | None, default: str | None, line: int) -> Instrument:
    text = symbol or default
    if not text:
        raise RowError("symbol: the file has no symbol column, pass the symbol parameter")
    try:  # an exported instrument id (venue.SYMBOL) keeps only its symbol: uploads live under venue 'upload'
        return Instrument(UPLOAD_VENUE, Instrument.parse(text).symbol)
    except InvalidInput as exc:
        raise RowError(f"symbol: {exc}") from None


def _rows(text: io.TextIOWrapper, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(text)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise InvalidInput(f"line {reader.line_num + 1}: the file is not UTF-8 text") from None
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:  # corrupt gzip/zip stream
            raise InvalidInput(f"line {reader.line_num + 1}: the compressed file is corrupt ({exc})") from None
        except csv.Error as exc:
            report.lines = reader.line_num
            report.reject(reader.line_num, f"unreadable CSV: {exc}")
            continue
        report.lines = reader.line_num
        if row and any(c.strip() for c in row):
            yield reader.line_num, row


class _Writer:
    def __init__(self, conn: psycopg.Connection, kind: Kind, timeframe: str | None) -> None:
        self.conn, self.kind, self.timeframe = conn, kind, timeframe
        self.batch: list[tuple] = []
        self.stored = 0
        self.spans: dict[str, list[int]] = {}  # instrument -> [min ts, max ts] of uploaded ticks

    def add(self, inst: Instrument, rec: TickRow | BarRow, side: int, line: int) -> None:
        if isinstance(rec, TickRow):
            tid = rec.trade_id if rec.trade_id is not None else line
            self.batch.append((inst.id, us_to_datetime(rec.ts_us), tid, rec.price, rec.qty, side, UPLOAD_SOURCE))
            span = self.spans.setdefault(inst.id, [rec.ts_us, rec.ts_us])
            span[0], span[1] = min(span[0], rec.ts_us), max(span[1], rec.ts_us)
        else:
            self.batch.append((inst.id, self.timeframe, us_to_datetime(rec.ts_us), rec.open, rec.high, rec.low,
                               rec.close, rec.volume, rec.buy_volume, rec.trades))  # fmt: skip
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        table, cols = ("up_ticks", _TICK_COLS) if self.kind == "ticks" else ("up_bars", _BAR_COLS)
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in self.batch:
                    copy.write_row(row)
            if self.kind == "ticks":
                cur.execute(f"INSERT INTO ticks ({_TICK_COLS}) SELECT {_TICK_COLS} FROM up_ticks ON CONFLICT DO NOTHING")
            else:
                cur.execute(_UPSERT_BARS)
            self.stored += max(cur.rowcount, 0)
            cur.execute(f"TRUNCATE {table}")
        self.batch.clear()


def import_csv(dsn: str, raw: IO[bytes], kind: Kind, *, symbol: str | None, timeframe: str | None,
               bar_timeframes: tuple[str, ...]) -> ImportReport:
    """Validate and store one uploaded file; ``timeframe`` is the bars' timeframe (bars uploads)."""
    report = ImportReport(kind=kind)
    text = open_text(raw)
    layout: Layout | None = None
    parse = None
    tf_us = timeframe_us(timeframe) if kind == "bars" and timeframe else 0
    instruments: dict[str, Instrument] = {}
    last_price: dict[str, float] = {}
    last_side: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        conn.execute(_TEMP)
        writer = _Writer(conn, kind, timeframe)
        for line, row in _rows(text, report):
            if layout is None:
                try:
                    layout = detect(row, kind)
                except RowError as exc:
                    raise InvalidInput(f"line {line}: {exc}") from None
                report.layout, parse = layout.name, layout.parser(kind)
                if layout.header:
                    continue
            try:
                rec = parse(row)  # type: ignore[misc]
                inst = _instrument(rec.symbol, symbol, line)
                if tf_us and rec.ts_us % tf_us:
                    raise RowError(f"timestamp: {us_to_datetime(rec.ts_us).isoformat()} is not a {timeframe} bucket start")
            except RowError as exc:
                report.reject(line, str(exc))
                continue
            side = 0
            if isinstance(rec, TickRow):
                # tick rule when the file has no side: up-tick = buy, down-tick = sell, unchanged = as before
                prev = last_price.get(inst.id)
                side = rec.side or (1 if prev is None or rec.price > prev else -1 if rec.price < prev
                                    else last_side.get(inst.id, 1))  # fmt: skip
                last_price[inst.id], last_side[inst.id] = rec.price, side
            if inst.id not in instruments:
                instruments[inst.id] = inst
                conn.execute("INSERT INTO instruments (id, venue, symbol) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                             (inst.id, inst.venue, inst.symbol))  # fmt: skip
            writer.add(inst, rec, side, line)
            report.accepted += 1
        writer.flush()
        report.stored = writer.stored
        report.instruments = sorted(instruments)
        if kind == "ticks":
            for inst_id, (lo, hi) in sorted(writer.spans.items()):
                for tf in bar_timeframes:
                    n = resample_ticks(conn, inst_id, tf, lo, hi)
                    report.bars_written[tf] = report.bars_written.get(tf, 0) + n
        elif timeframe and report.stored:
            report.bars_written[timeframe] = report.stored
        if report.accepted == 0:
            conn.rollback()
    return report


def resample_ticks(conn: psycopg.Connection, instrument: str, timeframe: str, lo_us: int, hi_us: int) -> int:
    """Rebuild the bars of every bucket touching [lo_us, hi_us] from all stored ticks of those buckets."""
    tf_us = timeframe_us(timeframe)
    start, end = lo_us - lo_us % tf_us, hi_us - hi_us % tf_us + tf_us
    bars: list[tuple] = []
    written = 0
    bucket, acc = None, None
    with conn.cursor(name=f"resample_{timeframe}") as cur:
        cur.itersize = BATCH_ROWS
        cur.execute("SELECT (extract(epoch FROM ts) * 1000000)::bigint, price, qty, side FROM ticks "
                    "WHERE instrument = %s AND ts >= %s AND ts < %s ORDER BY ts, trade_id",
                    (instrument, us_to_datetime(start), us_to_datetime(end)))  # fmt: skip
        for ts_us, price, qty, side in cur:
            b = ts_us - ts_us % tf_us
            if b == bucket:
                acc.add(price, qty_units(qty), side > 0)  # type: ignore[union-attr]
                continue
            if acc is not None:
                bars.append(_bar_row(instrument, timeframe, bucket, acc))  # type: ignore[arg-type]
                if len(bars) >= BATCH_ROWS:
                    written += _upsert_bars(conn, bars)
            bucket, acc = b, BarAccumulator(price, qty_units(qty), side > 0)
    if acc is not None:
        bars.append(_bar_row(instrument, timeframe, bucket, acc))  # type: ignore[arg-type]
    return written + _upsert_bars(conn, bars)


def _upsert_bars(conn: psycopg.Connection, bars: list[tuple]) -> int:
    """Write and clear ``bars`` (COPY into the temp table, one upsert)."""
    if not bars:
        return 0
    with conn.cursor() as cur:
        with cur.copy(f"COPY up_bars ({_BAR_COLS}) FROM STDIN") as copy:
            for row in bars:
                copy.write_row(row)
        cur.execute(_UPSERT_BARS)
        n = max(cur.rowcount, 0)
        cur.execute("TRUNCATE up_bars")
    bars.clear()
    return n


def _bar_row(instrument: str, timeframe: str, bucket_us: int, acc: BarAccumulator) -> tuple:
    bar = acc.to_bar(instrument, timeframe, bucket_us, 0)
    return (instrument, timeframe, us_to_datetime(bucket_us), bar.open, bar.high, bar.low, bar.close, bar.volume,
            bar.buy_volume, bar.trades)  # fmt: skip
