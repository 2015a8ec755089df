"""Trade history from Binance REST, by trade-id cursor, as WebSocket-shaped payloads.

REST rows are rewritten into the WebSocket payload shape (``e``, ``E``, ``s`` added; the
``historicalTrades`` field names mapped to ``t``/``p``/``q``/``T``/``m``) so they are turned into
``Tick`` records by the same normaliser as live frames: prices are converted exactly once, one way.
"""

from __future__ import annotations

import time
from typing import Any

from services.ingest.live.plan import USDM, StreamSpec
from services.ingest.live.rest import WeightedRestClient
from services.ingest.live.settings import LiveSettings
from shared.errors import DecodeError

HOUR_MS = 3_600_000


def agg_row_to_payload(row: dict[str, Any], symbol: str) -> dict[str, Any]:
    """``/aggTrades`` row (a, p, q, f, l, T, m[, M]) -> aggTrade WebSocket payload."""
    try:
        return {"e": "aggTrade", "E": row["T"], "s": symbol, **row}
    except (KeyError, TypeError) as exc:
        raise DecodeError(f"bad aggTrades row {row!r}") from exc


def trade_row_to_payload(row: dict[str, Any], symbol: str) -> dict[str, Any]:
    """``/trades`` or ``/historicalTrades`` row (id, price, qty, time, isBuyerMaker) -> trade payload."""
    try:
        return {
            "e": "trade",
            "E": row["time"],
            "s": symbol,
            "t": row["id"],
            "p": row["price"],
            "q": row["qty"],
            "T": row["time"],
            "m": row["isBuyerMaker"],
        }
    except (KeyError, TypeError) as exc:
        raise DecodeError(f"bad trades row {row!r}") from exc


def row_id(row: dict[str, Any], kind: str) -> int:
    return int(row["a"] if kind == "aggTrade" else row["id"])


def row_time_ms(row: dict[str, Any], kind: str) -> int:
    return int(row["T"] if kind == "aggTrade" else row["time"])


class TradeHistory:
    """REST cursors for one feed (spot and USD-M clients share the settings, not the budgets)."""

    def __init__(self, settings: LiveSettings, spot: WeightedRestClient, usdm: WeightedRestClient) -> None:
        self.settings = settings
        self.clients = {"binance-spot": spot, USDM: usdm}

    def _endpoint(self, spec: StreamSpec, which: str) -> tuple[str, int]:
        s = self.settings
        if spec.venue == USDM:
            table = {"aggTrade": (s.usdm_agg_trades_path, s.usdm_agg_trades_weight),
                     "trade": (s.usdm_trades_path, s.usdm_trades_weight),
                     "recent": (s.usdm_recent_trades_path, s.usdm_trades_weight // 4 or 1),
                     "time": (s.usdm_time_path, 1)}
        else:
            table = {"aggTrade": (s.spot_agg_trades_path, s.spot_agg_trades_weight),
                     "trade": (s.spot_trades_path, s.spot_trades_weight),
                     "recent": (s.spot_recent_trades_path, s.spot_trades_weight // 2 or 1),
                     "time": (s.spot_time_path, 1)}
        return table[which]

    async def page_from(self, spec: StreamSpec, from_id: int, limit: int, deadline: float) -> list[dict[str, Any]]:
        """Up to ``limit`` trades with id >= ``from_id``, oldest first, as WebSocket payloads."""
        path, weight = self._endpoint(spec, spec.kind)
        params = {"symbol": spec.symbol, "fromId": from_id, "limit": max(1, min(limit, self.settings.rest_page_limit))}
        rows = await self.clients[spec.venue].get_json(path, params, weight, deadline)
        return self._payloads(rows, spec)

    def _payloads(self, rows: Any, spec: StreamSpec) -> list[dict[str, Any]]:
        if not isinstance(rows, list):
            raise DecodeError(f"expected a list of trades for {spec.instrument}, got {type(rows).__name__}")
        convert = agg_row_to_payload if spec.kind == "aggTrade" else trade_row_to_payload
        return [convert(r, spec.symbol) for r in rows]

    async def server_time_ms(self, venue: str, deadline: float) -> int:
        path, weight = self._endpoint(StreamSpec("", venue, "X", "trade"), "time")
        body = await self.clients[venue].get_json(path, {}, weight, deadline)
        try:
            return int(body["serverTime"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"bad server time answer {body!r}") from exc

    async def seed_start_id(self, spec: StreamSpec, lookback_s: float, deadline: float) -> int | None:
        """Id of the first trade inside the last ``lookback_s`` seconds of server time (None: no trades)."""
        now_ms = await self.server_time_ms(spec.venue, deadline)
        start_ms = now_ms - int(lookback_s * 1000)
        if spec.kind == "aggTrade":
            return await self._first_agg_id_since(spec, start_ms, now_ms, deadline)
        return await self._first_trade_id_since(spec, start_ms, deadline)

    async def _first_agg_id_since(self, spec: StreamSpec, start_ms: int, now_ms: int, deadline: float) -> int | None:
        # aggTrades accepts a startTime..endTime window of < 1 h; walk windows forward until one has a trade.
        path, weight = self._endpoint(spec, "aggTrade")
        client = self.clients[spec.venue]
        while start_ms <= now_ms:
            end_ms = min(start_ms + HOUR_MS - 1, now_ms)
            params = {"symbol": spec.symbol, "startTime": start_ms, "endTime": end_ms, "limit": 1}
            rows = await client.get_json(path, params, weight, deadline)
            if rows:
                return row_id(rows[0], "aggTrade")
            start_ms = end_ms + 1
        return None

    async def _first_trade_id_since(self, spec: StreamSpec, start_ms: int, deadline: float) -> int | None:
        # Raw trades have no time filter: take the newest id, then step back a page at a time.
        path, weight = self._endpoint(spec, "recent")
        client = self.clients[spec.venue]
        newest = await client.get_json(path, {"symbol": spec.symbol, "limit": 1}, weight, deadline)
        if not newest:
            return None
        if row_time_ms(newest[-1], "trade") < start_ms:
            return row_id(newest[-1], "trade") + 1
        earliest = row_id(newest[-1], "trade")
        limit = self.settings.rest_page_limit
        for _ in range(self.settings.seed_max_pages):
            from_id = max(0, earliest - limit)
            page = await self.page_from(spec, from_id, min(limit, earliest - from_id), deadline)
            if not page:
                break
            inside = [int(p["t"]) for p in page if int(p["T"]) >= start_ms]
            if len(inside) < len(page) or from_id == 0 or int(page[0]["t"]) > from_id:
                return min(inside) if inside else earliest  # reached the window start (or the oldest trade)
            earliest = int(page[0]["t"])
        return earliest


def monotonic_deadline(seconds: float) -> float:
    return time.monotonic() + seconds
