"""Binance-compatible REST endpoints (ASGI, served by uvicorn) answered from the same tapes.

Spot ``/api/v3`` and USD-M ``/fapi/v1``: ``time``, ``aggTrades`` (``fromId`` or a < 1 h
``startTime``/``endTime`` window), ``trades`` (newest), ``historicalTrades`` (``fromId``), ``klines``
(1m, built from the trades). Only trades already released by the clock are visible. Every answer
carries ``X-MBX-USED-WEIGHT-1M``; queued throttles answer 429/418 with ``Retry-After``. Dumps and
their ``.CHECKSUM`` are under ``/data/``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakebinance import dumps
from tests.fakebinance.exchange import Exchange, RestCall
from tests.fakebinance.tapes import SPOT, USDM

HOUR_MS = 3_600_000
WEIGHTS = {"time": 1, "aggTrades": 4, "trades": 25, "historicalTrades": 25, "klines": 2}
USDM_WEIGHTS = {"time": 1, "aggTrades": 20, "trades": 5, "historicalTrades": 20, "klines": 5}


def _error(status: int, code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    return int(raw)


def _agg_row(p: dict[str, Any], venue: str) -> dict[str, Any]:
    row = {k: p[k] for k in ("a", "p", "q", "f", "l", "T", "m")}
    if venue == SPOT:
        row["M"] = p.get("M", True)
    return row


def _trade_row(p: dict[str, Any], venue: str) -> dict[str, Any]:
    row = {"id": p["t"], "price": p["p"], "qty": p["q"],
           "quoteQty": f"{float(p['p']) * float(p['q']):.8f}", "time": p["T"], "isBuyerMaker": p["m"]}
    if venue == SPOT:
        row["isBestMatch"] = True
    return row


def build_app(exchange: Exchange) -> Starlette:
    async def endpoint(request: Request) -> Response:
        path = request.url.path
        params = dict(request.query_params)
        venue = SPOT if path.startswith("/api/v3/") else USDM
        name = path.rsplit("/", 1)[1]
        if exchange.throttles:
            status, retry_after = exchange.throttles.popleft()
            exchange.rest_log.append(RestCall(time.monotonic(), path, params, status))
            return JSONResponse({"code": -1003, "msg": "Too much request weight used; banned until later."},
                                status_code=status, headers={"Retry-After": f"{retry_after:g}"})
        try:
            resp = answer(exchange, venue, name, params)
        except (ValueError, TypeError) as exc:
            resp = _error(400, -1100, f"Illegal characters found in a parameter: {exc}")
        weight = (WEIGHTS if venue == SPOT else USDM_WEIGHTS).get(name, 1)
        resp.headers["X-MBX-USED-WEIGHT-1M"] = str(exchange.charge(weight))
        exchange.rest_log.append(RestCall(time.monotonic(), path, params, resp.status_code))
        return resp

    async def dump(request: Request) -> Response:
        path = request.url.path.lstrip("/")
        exchange.rest_log.append(RestCall(time.monotonic(), "/" + path, {}, 200))
        is_checksum = path.endswith(".CHECKSUM")
        found = dumps.resolve(path.removesuffix(".CHECKSUM"), exchange.tapes)
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        name, body = found
        if is_checksum:
            return PlainTextResponse(dumps.checksum_text(name, body))
        if name in exchange.broken_dumps:
            body = body[:-8] + bytes(8)  # served bytes no longer match the published checksum
        return Response(body, media_type="application/zip")

    routes = [Route(f"/{prefix}/{name}", endpoint) for prefix in ("api/v3", "fapi/v1")
              for name in ("time", "aggTrades", "trades", "historicalTrades", "klines")]
    routes.append(Route("/data/{rest:path}", dump))
    return Starlette(routes=routes)


def answer(exchange: Exchange, venue: str, name: str, params: dict[str, str]) -> Response:
    if name == "time":
        return JSONResponse({"serverTime": exchange.clock_ms(venue)})
    symbol = params.get("symbol", "").upper()
    limit = _int(params, "limit", 500)
    max_limit = 1500 if (venue == USDM and name == "klines") else 1000
    if limit is None or not 1 <= limit <= max_limit:
        return _error(400, -1100, f"limit must be 1..{max_limit}")
    if name == "klines":
        return _klines(exchange, venue, symbol, params, limit)
    kind = "aggTrade" if name == "aggTrades" else "trade"
    rows = exchange.payload_rows(venue, symbol, kind)
    if rows is None:
        return _error(400, -1121, "Invalid symbol.")
    id_key = "a" if kind == "aggTrade" else "t"
    from_id = _int(params, "fromId")
    start, end = _int(params, "startTime"), _int(params, "endTime")
    if from_id is not None:
        picked = [r for r in rows if int(r[id_key]) >= from_id][:limit]
    elif kind == "aggTrade" and (start is not None or end is not None):
        if start is not None and end is not None and end - start >= HOUR_MS:
            return _error(400, -1127, "More than 1 hours between startTime and endTime.")
        picked = [r for r in rows if (start is None or int(r["T"]) >= start) and (end is None or int(r["T"]) <= end)]
        picked = picked[:limit]
    else:
        picked = rows[-limit:]
    convert = _agg_row if kind == "aggTrade" else _trade_row
    return JSONResponse([convert(p, venue) for p in picked])


def _klines(exchange: Exchange, venue: str, symbol: str, params: dict[str, str], limit: int) -> Response:
    if params.get("interval") != "1m":
        return _error(400, -1120, "Invalid interval (the fake serves 1m only).")
    rows = exchange.payload_rows(venue, symbol, "trade") or exchange.payload_rows(venue, symbol, "aggTrade")
    if rows is None:
        return _error(400, -1121, "Invalid symbol.")
    start, end = _int(params, "startTime"), _int(params, "endTime")
    lines = dumps.kline_rows([r for r in rows if (start is None or int(r["T"]) >= start // 60_000 * 60_000)
                               and (end is None or int(r["T"]) <= end)])
    out = []
    for line in lines[:limit]:
        f = line.split(",")
        out.append([int(f[0]), f[1], f[2], f[3], f[4], f[5], int(f[6]), f[7], int(f[8]), f[9], f[10], "0"])
    return JSONResponse(out)
