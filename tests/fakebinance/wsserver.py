"""Binance-compatible WebSocket endpoints: combined streams, raw streams, SUBSCRIBE, pings, limits.

Paths: spot ``/stream?streams=a/b`` and ``/ws/<stream>``; USD-M the same under ``/public`` and
``/market`` (and the legacy unrouted paths, which accept market streams but never deliver them).
The server pings every ``ping_interval_s`` with a payload and drops sockets that do not echo it in
time; more than 5 (spot) or 10 (USD-M) incoming messages in a second closes the socket with 1008.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.fakebinance.exchange import Client, Exchange
from tests.fakebinance.tapes import SPOT, USDM, ws_text_frame

log = logging.getLogger(__name__)

MAX_STREAMS = 1024
_WRITE_BATCH = 512
_WRITE_BUFFER_MAX = 1 << 22
INCOMING_LIMIT_PER_S = {SPOT: 5, USDM: 10}


def parse_path(path: str, venue: str) -> tuple[str, list[str], bool] | None:
    """(route, streams, raw) for a request path, or None when the path is not a stream endpoint."""
    parts = urlsplit(path)
    route = ""
    rest = parts.path
    if venue == USDM:
        for prefix in ("/public", "/market"):
            if rest.startswith(prefix + "/"):
                route, rest = prefix, rest[len(prefix):]
                break
    if rest == "/stream":
        names = parse_qs(parts.query).get("streams", [""])[0]
        return route, [n for n in names.split("/") if n], False
    if rest.startswith("/ws"):
        name = rest[len("/ws"):].strip("/")
        return route, [name] if name else [], True
    return None


class WsEndpoint:
    def __init__(self, exchange: Exchange, venue: str, ping_interval_s: float, ping_timeout_s: float) -> None:
        self.exchange = exchange
        self.venue = venue
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s

    async def handle(self, ws: ServerConnection) -> None:
        parsed = parse_path(ws.request.path if ws.request else "", self.venue)
        if parsed is None:
            await ws.close(1008, "unknown path")
            return
        route, streams, raw = parsed
        if len(streams) > MAX_STREAMS:
            await ws.close(1008, f"too many streams ({len(streams)} > {MAX_STREAMS})")
            return
        client = Client(self.venue, route, streams, raw, ws)
        self.exchange.add_client(client)
        tasks = [asyncio.create_task(self._writer(client)), asyncio.create_task(self._pinger(client))]
        try:
            await self._reader(client)
        finally:
            for task in tasks:
                task.cancel()
            self.exchange.remove_client(client)

    async def _reader(self, client: Client) -> None:
        limit = INCOMING_LIMIT_PER_S[self.venue]
        try:
            async for message in client.ws:
                now = time.monotonic()
                client.incoming.append(now)
                while client.incoming and now - client.incoming[0] > 1.0:
                    client.incoming.popleft()
                if len(client.incoming) > limit:
                    await client.ws.close(1008, "Too many requests")
                    return
                await self._control(client, message)
        except ConnectionClosed:
            return

    async def _control(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            method, params, req_id = req["method"], req.get("params", []), req.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await client.ws.send(orjson.dumps({"code": 2, "msg": "Invalid request"}).decode())
            return
        if method == "SUBSCRIBE":
            client.streams = list(dict.fromkeys([*client.streams, *params]))
            self.exchange.resubscribe(client)
        elif method == "UNSUBSCRIBE":
            client.streams = [s for s in client.streams if s not in params]
            self.exchange.resubscribe(client)
        elif method == "LIST_SUBSCRIPTIONS":
            await client.ws.send(orjson.dumps({"result": client.streams, "id": req_id}).decode())
            return
        await client.ws.send(orjson.dumps({"result": None, "id": req_id}).decode())

    async def _writer(self, client: Client) -> None:
        # Frames are written to the transport in batches of ready-made bytes: websockets' per-message
        # send would make this fake, not the client under test, the bottleneck of the benchmark.
        queue = client.queue
        transport = client.ws.transport
        while True:
            await client.wake.wait()
            client.wake.clear()
            while queue:
                if transport.is_closing():
                    return
                parts = []
                while queue and len(parts) < _WRITE_BATCH:
                    item = queue.popleft()
                    parts.append(item if isinstance(item, bytes) else ws_text_frame(item))
                transport.write(b"".join(parts))
                client.sent += len(parts)
                while transport.get_write_buffer_size() > _WRITE_BUFFER_MAX and not transport.is_closing():
                    await asyncio.sleep(0.001)

    async def _pinger(self, client: Client) -> None:
        try:
            while True:
                await asyncio.sleep(self.ping_interval_s)
                payload = os.urandom(4)
                pong = await client.ws.ping(payload)  # websockets matches the pong to this payload
                client.pings += 1
                try:
                    await asyncio.wait_for(pong, self.ping_timeout_s)
                except TimeoutError:
                    log.warning("fake binance: no pong within %.1f s; closing", self.ping_timeout_s)
                    await client.ws.close(1008, "pong timeout")
                    return
                client.pongs += 1
        except ConnectionClosed:
            return
