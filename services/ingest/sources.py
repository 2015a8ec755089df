"""Replay file readers: each yields ``(line_no, Tick | DecodeError)`` in file order.

Supported layouts (sniffed, see ``files.sniff_format``):

* Binance dump CSVs (data.binance.vision), with or without header, ms or µs times, plain/.gz/.zip:
  trades ``id,price,qty,quoteQty,time,isBuyerMaker[,isBestMatch]`` and aggTrades
  ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker[,is_best_match]``.
  Symbol from the file name (``BTCUSDT-trades-2024-08-09.csv``) or an option; venue from the path,
  an option, or the official column counts (spot trades 7 / aggTrades 8 columns, USD-M 6 / 7).
* Recorded ``@trade`` frames flattened to CSV (``recv_ts_ns,e,E,s,t,p,q,T,m,M`` spot,
  ``recv_ts_ns,e,E,T,s,t,p,q,X,m`` USD-M), venue from the ``spot_``/``usdm_`` name prefix.
* Raw WebSocket captures (hftbacktest ``<recv_ts_ns> <frame>``, cryptofeed URL line then
  ``<recv_s>: <frame>``) and JSONL frames: every line goes through ``parse_combined_frame``, the
  live code path; frames without trades are skipped and counted.

Rows are never trusted: a malformed one becomes a ``DecodeError`` for that line and reading goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import DecodeError, InvalidInput
from shared.messages import Source, Tick
from shared.timeutil import now_us

from .files import (
    FILE_FORMATS,
    FileFormat,
    LineFile,
    sniff_format,
    symbol_from_name,
    venue_from_path,
    venue_from_url,
)
from .normalize import BINANCE_VENUES, SPOT_VENUE, USDM_VENUE, make_tick, parse_combined_frame

ReadItem = tuple[int, Tick | DecodeError]

# Header names (lower-case, without '_') -> role, for dump CSVs whose header gives the order.
_DUMP_COLUMNS = {
    "id": "id", "aggtradeid": "id", "a": "id",
    "price": "price", "p": "price",
    "qty": "qty", "quantity": "qty", "q": "qty",
    "time": "time", "transacttime": "time", "timestamp": "time", "t": "time",
    "isbuyermaker": "maker", "m": "maker",
}  # fmt: skip
# Official positions (no header) of id, price, qty, time, buyer-is-maker.
_DUMP_POSITIONS = {"dump-trades": (0, 1, 2, 4, 5), "dump-aggTrades": (0, 1, 2, 5, 6)}
_DUMP_WIDTHS = {"dump-trades": (6, 7), "dump-aggTrades": (7, 8)}
_BOOLS = {b"true": True, b"false": False, b"True": True, b"False": False, b"TRUE": True, b"FALSE": False}


def _parse_bool(cell: bytes, name: str) -> bool:
    value = _BOOLS.get(cell.strip())
    if value is None:
        raise DecodeError(f"{name} {cell[:20]!r} is not true/false")
    return value


def _slow_fields(cells: list[bytes], i_id: int, i_time: int, i_maker: int, id_name: str,
                 time_name: str) -> tuple[int, int, bool]:  # fmt: skip
    return (_parse_int(cells[i_id], id_name), _parse_int(cells[i_time], time_name),
            _parse_bool(cells[i_maker], "is_buyer_maker" if id_name == "trade id" else "m"))  # fmt: skip


def _parse_int(cell: bytes, name: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise DecodeError(f"{name} {cell[:30]!r} is not an integer") from None


@dataclass
class TickFile:
    """One replay file: its layout, venue and symbol, and an iterator over its ticks."""

    path: Path
    format: FileFormat
    venue: str
    symbol: str | None = None  # dump CSVs only; other layouts carry the symbol in every row
    source: Source = "replay"
    clock: Callable[[], int] = now_us  # stamps ts_ingest_us as each line is read
    skipped: int = 0  # lines without a trade (bookTicker, depth, acks, header rows)
    lines: LineFile = field(init=False)

    def __post_init__(self) -> None:
        if self.venue not in BINANCE_VENUES:
            raise InvalidInput(f"venue {self.venue!r} is not one of {BINANCE_VENUES}")
        self.lines = LineFile(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    def __iter__(self) -> Iterator[ReadItem]:
        if self.format in _DUMP_POSITIONS:
            return self._dump_rows()
        if self.format == "ws-csv":
            return self._ws_csv_rows()
        return self._ws_frames()

    # -- data.binance.vision dumps -------------------------------------------------------------

    def _dump_rows(self) -> Iterator[ReadItem]:
        positions = _DUMP_POSITIONS[self.format]
        widths = _DUMP_WIDTHS[self.format]
        venue, symbol, source, clock = self.venue, self.symbol, self.source, self.clock
        first = True
        for line_no, line in self.lines:
            cells = line.split(b",")
            if first:
                first = False
                if not cells[0].strip().isdigit():  # a header row: take the column order from it
                    header = _dump_header_positions(cells)
                    if header is None:
                        yield line_no, DecodeError(f"neither a header nor a trade row: {line[:80]!r}")
                    else:
                        positions, widths = header, (len(cells),)
                        self.skipped += 1
                    continue
            if len(cells) not in widths:
                yield line_no, DecodeError(f"expected {' or '.join(map(str, widths))} columns, got {len(cells)}")
                continue
            widths = (len(cells),)  # the first row fixes the width for the rest of the file
            i_id, i_price, i_qty, i_time, i_maker = positions
            try:
                try:  # fast path; the slow one only runs to word the error (or strip spaces)
                    trade_id, trade_time, maker = int(cells[i_id]), int(cells[i_time]), _BOOLS[cells[i_maker]]
                except (ValueError, KeyError):
                    trade_id, trade_time, maker = _slow_fields(cells, i_id, i_time, i_maker, "trade id", "time")
                tick = make_tick(venue, symbol, trade_id, cells[i_price], cells[i_qty], maker, trade_time, None,
                                 clock(), source)  # fmt: skip
            except DecodeError as exc:
                yield line_no, exc
                continue
            yield line_no, tick

    # -- recorded @trade frames flattened to CSV -----------------------------------------------

    def _ws_csv_rows(self) -> Iterator[ReadItem]:
        venue, source, clock = self.venue, self.source, self.clock
        index: dict[str, int] | None = None
        for line_no, line in self.lines:
            cells = line.split(b",")
            if index is None:
                index = _ws_csv_header(cells, self.path)
                i_event, i_E = index.get("e"), index.get("E")
                i_t, i_p, i_q, i_T, i_m, i_s = (index[c] for c in ("t", "p", "q", "T", "m", "s"))
                width = len(cells)
                last_raw_symbol, symbol = b"", ""
                self.skipped += 1
                continue
            if len(cells) != width:
                yield line_no, DecodeError(f"expected {width} columns, got {len(cells)}")
                continue
            try:
                if i_event is not None and cells[i_event] != b"trade":
                    raise DecodeError(f"event type {cells[i_event][:20]!r} is not 'trade'")
                try:
                    trade_id, trade_time, maker = int(cells[i_t]), int(cells[i_T]), _BOOLS[cells[i_m]]
                    event_time = int(cells[i_E]) if i_E is not None else None
                except (ValueError, KeyError):
                    trade_id, trade_time, maker = _slow_fields(cells, i_t, i_T, i_m, "t", "T")
                    event_time = _parse_int(cells[i_E], "E") if i_E is not None else None
                raw_symbol = cells[i_s]
                if raw_symbol != last_raw_symbol:  # one symbol per file in practice: decode once
                    last_raw_symbol, symbol = raw_symbol, raw_symbol.decode("ascii", "replace")
                tick = make_tick(venue, symbol, trade_id, cells[i_p], cells[i_q], maker, trade_time, event_time,
                                 clock(), source)  # fmt: skip
            except DecodeError as exc:
                yield line_no, exc
                continue
            yield line_no, tick

    # -- raw WebSocket frames (the live path) --------------------------------------------------

    def _ws_frames(self) -> Iterator[ReadItem]:
        venue, source, clock = self.venue, self.source, self.clock
        fmt = self.format
        for line_no, line in self.lines:
            if fmt == "ws-hftbacktest":
                _, _, frame = line.partition(b" ")
            elif fmt == "ws-cryptofeed":
                if line_no == 1 and line.startswith((b"wss://", b"ws://")):
                    self.skipped += 1
                    continue
                _, _, frame = line.partition(b": ")
            else:
                frame = line
            if not frame:
                yield line_no, DecodeError(f"no frame after the receive timestamp: {line[:60]!r}")
                continue
            try:
                tick = parse_combined_frame(frame, venue, clock(), source)
            except DecodeError as exc:
                yield line_no, exc
                continue
            if tick is None:
                self.skipped += 1
            else:
                yield line_no, tick


def _ws_csv_header(cells: list[bytes], path: Path) -> dict[str, int]:
    index = {c.decode("ascii", "replace").strip(): i for i, c in enumerate(cells)}
    missing = {"t", "p", "q", "T", "m", "s"} - index.keys()
    if missing:
        raise InvalidInput(f"{path}: recorded-frame CSV header lacks columns {sorted(missing)}")
    return index


def _dump_header_positions(cells: list[bytes]) -> tuple[int, int, int, int, int] | None:
    roles: dict[str, int] = {}
    for i, cell in enumerate(cells):
        role = _DUMP_COLUMNS.get(cell.decode("ascii", "replace").strip().lower().replace("_", ""))
        if role and role not in roles:
            roles[role] = i
    if any(r not in roles for r in ("id", "price", "qty", "time", "maker")):
        return None
    return roles["id"], roles["price"], roles["qty"], roles["time"], roles["maker"]


def _dump_venue_from_columns(fmt: FileFormat, lines: list[bytes]) -> str | None:
    """Official layouts differ in width: spot trades 7 / aggTrades 8 columns, USD-M 6 / 7."""
    for line in lines:
        width = len(line.split(b","))
        if line.split(b",")[0].strip().isdigit():
            if fmt == "dump-trades":
                return {7: SPOT_VENUE, 6: USDM_VENUE}.get(width)
            return {8: SPOT_VENUE, 7: USDM_VENUE}.get(width)
    return None


def open_tick_file(
    path: str | Path,
    *,
    venue: str | None = None,
    symbol: str | None = None,
    file_format: FileFormat | None = None,
    source: Source = "replay",
    clock: Callable[[], int] = now_us,
) -> TickFile:
    """Sniff a file's layout, venue and symbol (options win over what the file says)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    lines = LineFile(path)
    head = lines.head(2)
    if not head:
        raise InvalidInput(f"{path}: the file is empty")
    fmt = file_format or sniff_format(path, head[0])
    if fmt not in FILE_FORMATS:
        raise InvalidInput(f"file format {fmt!r} is not one of {FILE_FORMATS}")
    venue = venue or venue_from_path(path)
    if venue is None and fmt == "ws-cryptofeed":
        venue = venue_from_url(head[0])
    if venue is None and fmt in _DUMP_POSITIONS:
        venue = _dump_venue_from_columns(fmt, head)
    if venue is None:
        raise InvalidInput(f"{path}: cannot tell spot from USD-M futures; pass --venue binance-spot|binance-usdm")
    symbol = (symbol or symbol_from_name(path) or "").upper() or None
    if fmt in _DUMP_POSITIONS and not symbol:
        raise InvalidInput(f"{path}: no symbol in the file name (SYMBOL-trades-DATE.csv); pass --symbol")
    if fmt == "ws-csv":
        _ws_csv_header(head[0].split(b","), path)
    return TickFile(path=path, format=fmt, venue=venue, symbol=symbol, source=source, clock=clock)
