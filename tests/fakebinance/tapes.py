"""What the fake exchange "trades": recorded Binance payloads (or generated ones when the data is absent).

A ``Tape`` is one stream of one symbol on one venue: its payloads in exchange order, exactly as
Binance sent them (the ``data`` object of the combined-stream wrapper), and the wrapped frames,
serialised once. Trade tapes have contiguous ids, so REST can answer ``fromId`` cursors from them.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.testing.generator import CointegratedSpec, generate_ticks

SPOT = "binance-spot"
USDM = "binance-usdm"
TRADE_KINDS = ("trade", "aggTrade")


@dataclass
class Tape:
    venue: str
    symbol: str
    kind: str  # trade | aggTrade | bookTicker | kline_1m
    payloads: list[dict[str, Any]]
    frames: list[str] = field(default_factory=list)
    released: int = 0  # payloads[:released] have happened (REST shows them; sockets saw them live)

    def __post_init__(self) -> None:
        if not self.frames:
            self.frames = [json.dumps({"stream": self.stream, "data": p}, separators=(",", ":")) for p in self.payloads]

    @property
    def wire(self) -> list[bytes]:
        """Each frame as WebSocket bytes (encoded once; the server writes them straight to the socket)."""
        cached = self.__dict__.get("_wire")
        if cached is None or len(cached) != len(self.frames):
            cached = self.__dict__["_wire"] = [ws_text_frame(f) for f in self.frames]
        return cached

    @property
    def stream(self) -> str:
        return f"{self.symbol.lower()}@{self.kind}"

    @property
    def id_field(self) -> str:
        return "a" if self.kind == "aggTrade" else "t"

    def trade_id(self, index: int) -> int:
        return int(self.payloads[index][self.id_field])

    @property
    def first_id(self) -> int:
        return self.trade_id(0)

    def released_payloads(self) -> list[dict[str, Any]]:
        return self.payloads[: self.released]

    def index_of(self, trade_id: int) -> int:
        """Position of ``trade_id`` (ids are contiguous on trade tapes)."""
        return trade_id - self.first_id


def ws_text_frame(text: str) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    body = text.encode()
    n = len(body)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + body


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _group(rows: list[dict[str, Any]], venue: str) -> list[Tape]:
    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if "stream" in row and isinstance(row.get("data"), dict):
            by_stream[row["stream"]].append(row["data"])
    tapes = []
    for stream, payloads in by_stream.items():
        symbol, _, kind = stream.partition("@")
        tapes.append(Tape(venue, symbol.upper(), kind, payloads))
    return tapes


def recorded_sample_tapes(ws_dir: Path) -> list[Tape]:
    """The per-type JSONL samples (300 trades per symbol, bookTicker, USD-M aggTrade, klines)."""
    files = {
        "binance_spot_trade.hftbacktest.sample.jsonl": SPOT,
        "binance_usdm_trade.hftbacktest.sample.jsonl": USDM,
        "binance_usdm_aggTrade.cryptofeed.jsonl": USDM,
        "binance_spot_bookTicker.hftbacktest.sample.jsonl": SPOT,
        "binance_usdm_bookTicker.hftbacktest.sample.jsonl": USDM,
        "binance_usdm_kline_1m.cryptofeed.jsonl": USDM,
    }
    tapes: list[Tape] = []
    for name, venue in files.items():
        path = ws_dir / name
        if path.exists():
            tapes += _group(_read_jsonl(path), venue)
    return [t for t in tapes if t.kind not in TRADE_KINDS or _contiguous(t)]


def recorded_capture_tapes(ws_dir: Path, kinds: tuple[str, ...] = ("trade",)) -> list[Tape]:
    """The full hftbacktest captures (tens of thousands of trades per symbol), for the benchmark."""
    root = ws_dir / "raw_captures" / "hftbacktest"
    rows_by_venue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for venue_dir, venue in (("spot", SPOT), ("usdm", USDM)):
        for path in sorted((root / venue_dir).glob("*.gz")):
            with gzip.open(path, "rt") as fh:
                for line in fh:
                    _, _, body = line.partition(" ")
                    if '"stream"' not in body or not any(f"@{k}\"" in body for k in kinds):
                        continue
                    rows_by_venue[venue].append(json.loads(body))
    tapes: list[Tape] = []
    for venue, rows in rows_by_venue.items():
        tapes += _group(rows, venue)
    return [t for t in tapes if _contiguous(t)]


def _contiguous(tape: Tape) -> bool:
    if tape.kind not in TRADE_KINDS:
        return True
    ids = [tape.trade_id(i) for i in range(len(tape.payloads))]
    return all(b == a + 1 for a, b in zip(ids, ids[1:], strict=False))


def generated_tapes(duration_s: float = 60.0, seed: int = 7, kinds: tuple[str, ...] = ("trade", "aggTrade"),
                    venues: tuple[str, ...] = (SPOT, USDM)) -> list[Tape]:
    """Binance-format payloads built from the seeded cointegrated generator (used when no data is present)."""
    ticks = generate_ticks(CointegratedSpec(duration_s=duration_s, seed=seed,
                                            y_instrument="sim.ETHUSDT", x_instrument="sim.BTCUSDT"))
    tapes: list[Tape] = []
    for venue in venues:
        decimals = 8 if venue == SPOT else 2
        for kind in kinds:
            per_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for tick in ticks:
                symbol = tick.instrument.split(".", 1)[1]
                rows = per_symbol[symbol]
                ms = tick.ts_event_us // 1000
                tid = 1_000_000 + len(rows)
                price, qty = f"{tick.price:.{decimals}f}", f"{tick.qty:.{max(decimals, 5)}f}"
                if kind == "trade":
                    payload = {"e": "trade", "E": ms, "s": symbol, "t": tid, "p": price, "q": qty, "T": ms,
                               "m": tick.side == "sell"}
                    if venue == SPOT:
                        payload["M"] = True
                    else:
                        payload["X"] = "MARKET"
                else:
                    payload = {"e": "aggTrade", "E": ms, "s": symbol, "a": tid, "p": price, "q": qty,
                               "f": 5 * tid, "l": 5 * tid, "T": ms, "m": tick.side == "sell"}
                    if venue == SPOT:
                        payload["M"] = True
                rows.append(payload)
            tapes += [Tape(venue, symbol, kind, rows) for symbol, rows in per_symbol.items()]
    return tapes


def tile(tape: Tape, copies: int) -> Tape:
    """``copies`` back-to-back repeats of a trade tape with ids (and times) shifted to stay contiguous.

    Only the benchmark uses this, to stream more frames than a capture holds.
    """
    n = len(tape.payloads)
    span_ms = int(tape.payloads[-1]["T"]) - int(tape.payloads[0]["T"]) + 1
    id_key = tape.id_field
    out: list[dict[str, Any]] = []
    for c in range(copies):
        for p in tape.payloads:
            q = dict(p)
            q[id_key] = int(p[id_key]) + c * n
            q["T"] = int(p["T"]) + c * span_ms
            q["E"] = int(p.get("E", p["T"])) + c * span_ms
            out.append(q)
    return Tape(tape.venue, tape.symbol, tape.kind, out)


def load_tapes(ws_dir: Path | None, source: str = "sample") -> list[Tape]:
    """Recorded tapes from ``ws_dir`` (``sample`` or ``capture``), generated ones when it is absent."""
    if ws_dir is not None and ws_dir.is_dir():
        tapes = recorded_sample_tapes(ws_dir) if source == "sample" else recorded_capture_tapes(ws_dir)
        if tapes:
            return tapes
    return generated_tapes()
