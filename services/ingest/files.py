"""Opening replay files: plain, .gz or .zip, read as numbered byte lines with a byte-progress gauge,
plus sniffing which of the supported layouts a file has and which venue/symbol it belongs to."""

from __future__ import annotations

import gzip
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from shared.errors import InvalidInput

from .normalize import SPOT_VENUE, USDM_VENUE

FileFormat = Literal[
    "dump-trades",  # data.binance.vision trades CSV
    "dump-aggTrades",  # data.binance.vision aggTrades CSV
    "ws-csv",  # recorded @trade frames flattened to CSV (recv_ts_ns,e,E,...)
    "ws-jsonl",  # one combined-stream frame per line
    "ws-hftbacktest",  # "<recv_ts_ns> <frame>" per line
    "ws-cryptofeed",  # first line the URL, then "<recv_epoch_s>: <frame>"
]
FILE_FORMATS: tuple[str, ...] = FileFormat.__args__  # type: ignore[attr-defined]

_DUMP_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]{2,32})-(?P<kind>trades|aggTrades)-", re.ASCII)
_HFT_LINE = re.compile(rb"^\d{10,20} [{\[]")
_CRYPTOFEED_LINE = re.compile(rb"^\d{9,11}(\.\d+)?: ")
_TOKEN = re.compile(r"[a-z0-9]+")
_CHUNK = 64 * 1024


class LineFile:
    """Numbered lines of a plain/.gz/.zip file; ``bytes_done``/``bytes_total`` are on-disk bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes_total = path.stat().st_size
        self._raw: BinaryIO | None = None

    @property
    def bytes_done(self) -> int:
        raw = self._raw
        if raw is None or raw.closed:
            return self.bytes_total if raw is not None else 0
        return raw.tell()

    def _open_stream(self, raw: BinaryIO) -> BinaryIO:
        name = self.path.name.lower()
        if name.endswith(".gz"):
            return gzip.GzipFile(fileobj=raw, mode="rb")
        if name.endswith(".zip"):
            archive = zipfile.ZipFile(raw)
            members = [m for m in archive.infolist() if not m.is_dir()]
            csvs = [m for m in members if m.filename.lower().endswith(".csv")] or members
            if len(csvs) != 1:
                raise InvalidInput(f"{self.path}: expected one CSV inside the zip, found {len(csvs)}")
            return archive.open(csvs[0])
        return raw

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """``(line_no, line without the line break)``, 1-based, blank lines skipped."""
        with open(self.path, "rb") as raw:
            self._raw = raw
            stream = self._open_stream(raw)
            # Read in chunks and split here: several times cheaper than readline() on gzip/zip
            # streams. read1 does one raw read, so a truncated archive still yields every line
            # before the damage.
            line_no = 0
            rest = b""
            while chunk := stream.read1(_CHUNK):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    line_no += 1
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    if line:
                        yield line_no, line
            if rest.rstrip(b"\r"):
                yield line_no + 1, rest.rstrip(b"\r")

    def head(self, n: int = 2) -> list[bytes]:
        """The first ``n`` non-blank lines (for sniffing; reads the file separately)."""
        out: list[bytes] = []
        with open(self.path, "rb") as raw:
            stream = self._open_stream(raw)
            for line in stream:
                line = line.rstrip(b"\r\n")
                if line:
                    out.append(line)
                if len(out) >= n:
                    break
        return out


def sniff_format(path: Path, first_line: bytes) -> FileFormat:
    """Which layout a file has, from its first line (and, for dump CSVs, its name and columns)."""
    if first_line.startswith((b"wss://", b"ws://")):
        return "ws-cryptofeed"
    if first_line.startswith((b"{", b"[")):
        return "ws-jsonl"
    if _HFT_LINE.match(first_line):
        return "ws-hftbacktest"
    if _CRYPTOFEED_LINE.match(first_line):
        return "ws-cryptofeed"
    if first_line.startswith(b"recv_ts_ns,"):
        return "ws-csv"
    match = _DUMP_NAME.match(path.name)
    if match:
        return "dump-trades" if match["kind"] == "trades" else "dump-aggTrades"
    cells = first_line.decode("utf-8", "replace").lower().split(",")
    if "agg_trade_id" in cells or "first_trade_id" in cells:
        return "dump-aggTrades"
    if "quote_qty" in cells or "quoteqty" in cells:
        return "dump-trades"
    # Headerless dump without a telling name: trades have the buyer-maker flag at column 6
    # (index 5), aggTrades have their transact time there.
    if len(cells) == 6 or (len(cells) == 7 and cells[5] in ("true", "false")):
        return "dump-trades"
    if len(cells) in (7, 8):
        return "dump-aggTrades"
    raise InvalidInput(f"{path}: cannot tell the file layout from its first line {first_line[:80]!r}")


def venue_from_path(path: Path) -> str | None:
    """``binance-usdm`` / ``binance-spot`` from words in the path (usdm, futures, um, spot), else None."""
    tokens: list[str] = []
    for part in path.parts[-4:]:
        tokens += _TOKEN.findall(part.lower())
    # The file name decides before its folders (a spot file could sit under a "futures" folder).
    for group in (_TOKEN.findall(path.name.lower()), tokens):
        if any(t in ("usdm", "futures", "um", "fapi", "fstream") for t in group):
            return USDM_VENUE
        if "spot" in group:
            return SPOT_VENUE
    return None


def venue_from_url(url_line: bytes) -> str | None:
    """Venue of a cryptofeed capture from its subscribe URL (``fstream`` = USD-M futures)."""
    if b"fstream" in url_line or b"/fapi" in url_line:
        return USDM_VENUE
    if b"stream.binance.com" in url_line or b"data-stream.binance.vision" in url_line:
        return SPOT_VENUE
    return None


def symbol_from_name(path: Path) -> str | None:
    match = _DUMP_NAME.match(path.name)
    return match["symbol"] if match else None
