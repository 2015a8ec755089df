"""data.binance.vision-style dump files built from the tapes (zip + ``.CHECKSUM``).

Layout: ``data/{spot|futures/um}/daily/{trades|aggTrades|klines}/SYMBOL/[1m/]SYMBOL-{kind|1m}-DATE.zip``.
Spot CSVs have no header; USD-M CSVs have one (DOMAIN_NOTES 4.6).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

from tests.fakebinance.tapes import SPOT, USDM, Tape

_PATH = re.compile(
    r"^data/(?P<market>spot|futures/um)/daily/(?P<kind>trades|aggTrades|klines)/(?P<symbol>[A-Z0-9]+)/"
    r"(?:(?P<interval>1m)/)?(?P=symbol)-(?P<label>trades|aggTrades|1m)-(?P<date>\d{4}-\d{2}-\d{2})\.zip$"
)
USDM_HEADERS = {
    "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    "trades": "id,price,qty,quote_qty,time,is_buyer_maker",
    "klines": "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
              "taker_buy_quote_volume,ignore",
}


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _bool(value: bool, venue: str) -> str:
    return ("True" if value else "False") if venue == SPOT else ("true" if value else "false")


def csv_rows(tape: Tape, kind: str, date: str) -> list[str]:
    """Dump rows of one UTC day built from a tape (trades from a trade tape, aggTrades from an aggTrade tape)."""
    day = [p for p in tape.payloads if _day(int(p["T"])) == date]
    venue = tape.venue
    if kind == "aggTrades":
        rows = [f"{p['a']},{p['p']},{p['q']},{p['f']},{p['l']},{p['T']},{_bool(p['m'], venue)}" for p in day]
        if venue == SPOT:
            rows = [r + ",True" for r in rows]
    elif kind == "trades":
        rows = [f"{p['t']},{p['p']},{p['q']},{float(p['p']) * float(p['q']):.8f},{p['T']},{_bool(p['m'], venue)}"
                for p in day]
        if venue == SPOT:
            rows = [r + ",True" for r in rows]
    else:
        rows = kline_rows(day)
    return rows


def kline_rows(payloads: list[dict[str, Any]]) -> list[str]:
    buckets: dict[int, list[dict[str, Any]]] = {}
    for p in payloads:
        buckets.setdefault(int(p["T"]) // 60_000 * 60_000, []).append(p)
    rows = []
    for start, ps in sorted(buckets.items()):
        prices = [float(p["p"]) for p in ps]
        vol = sum(float(p["q"]) for p in ps)
        quote = sum(float(p["p"]) * float(p["q"]) for p in ps)
        buy = [p for p in ps if not p["m"]]
        rows.append(",".join(str(x) for x in (
            start, ps[0]["p"], max(prices), min(prices), ps[-1]["p"], f"{vol:.8f}", start + 59_999, f"{quote:.8f}",
            len(ps), f"{sum(float(p['q']) for p in buy):.8f}",
            f"{sum(float(p['p']) * float(p['q']) for p in buy):.8f}", 0)))
    return rows


def build_zip(name: str, lines: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(name.removesuffix(".zip") + ".csv", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, "\n".join(lines) + "\n")
    return buf.getvalue()


def checksum_text(name: str, body: bytes) -> str:
    return f"{hashlib.sha256(body).hexdigest()}  {name}\n"


def resolve(path: str, tapes: dict[tuple[str, str], Tape]) -> tuple[str, bytes] | None:
    """(file name, zip bytes) for a dump path, or None when there is no such file."""
    m = _PATH.match(path)
    if m is None:
        return None
    venue = SPOT if m["market"] == "spot" else USDM
    kind = m["kind"]
    if (kind == "klines") != (m["interval"] == "1m") or (kind == "klines") != (m["label"] == "1m"):
        return None
    if kind != "klines" and m["label"] != kind:
        return None
    source_kind = "aggTrade" if kind == "aggTrades" else "trade"
    tape = tapes.get((venue, f"{m['symbol'].lower()}@{source_kind}"))
    if tape is None and kind == "klines":
        tape = tapes.get((venue, f"{m['symbol'].lower()}@aggTrade"))
    if tape is None:
        return None
    rows = csv_rows(tape, kind, m["date"])
    if not rows:
        return None
    if venue == USDM:
        rows = [USDM_HEADERS[kind], *rows]
    name = path.rsplit("/", 1)[1]
    return name, build_zip(name, rows)
