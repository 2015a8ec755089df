"""The fake exchange's state: tapes, the release clock, subscribed sockets and the fault switches.

Everything here runs on the server's own event loop (see ``server.FakeBinance``); tests change the
switches through ``FakeBinance`` methods, which hop onto that loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakebinance.tapes import SPOT, USDM, Tape

# USD-M 2026 routing (DOMAIN_NOTES 3.3): what each path delivers. Legacy unrouted paths ("")
# still deliver the public category but ack market streams and send nothing.
USDM_PUBLIC = ("bookTicker", "depth", "trade")


def usdm_category(kind: str) -> str:
    channel = kind.partition("@")[0]
    if channel != "aggTrade" and channel.startswith(USDM_PUBLIC):
        return "/public"
    return "/market"


def delivers(venue: str, route: str, kind: str) -> bool:
    if venue == SPOT:
        return route == ""
    category = usdm_category(kind)
    return route == category or (route == "" and category == "/public")


@dataclass(eq=False)
class Client:
    """One accepted socket."""

    venue: str
    route: str
    streams: list[str]
    raw: bool  # /ws/<stream>: bare payloads instead of the combined wrapper
    ws: Any
    opened: float = field(default_factory=time.monotonic)
    queue: deque[str | bytes] = field(default_factory=deque)  # text, or an encoded frame
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pings: int = 0
    pongs: int = 0
    sent: int = 0
    incoming: deque[float] = field(default_factory=deque)

    def routed(self, kind_of: dict[str, str]) -> set[str]:
        return {s for s in self.streams if delivers(self.venue, self.route, kind_of.get(s, s.partition("@")[2]))}


@dataclass
class RestCall:
    t: float  # time.monotonic() when the request arrived
    path: str
    params: dict[str, str]
    status: int


class Exchange:
    def __init__(self, tapes: list[Tape]) -> None:
        self.tapes: dict[tuple[str, str], Tape] = {(t.venue, t.stream): t for t in tapes}
        self.clients: set[Client] = set()
        self.subscribers: dict[tuple[str, str], set[Client]] = {}
        self.rate_per_s: float | None = 100.0  # None: as fast as the sockets take them
        self.silenced: set[tuple[str, str]] = set()
        self.silence_all = False
        self.skipped: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.throttles: deque[tuple[int, float]] = deque()
        self.rest_log: list[RestCall] = []
        self.weight_minute = 0
        self.weight_used = 0
        self.broken_dumps: set[str] = set()
        self.rest_hidden: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.closed_clients: list[Client] = []
        self._playing: asyncio.Task[None] | None = None

    # -- tapes ------------------------------------------------------------------------------------
    def tape(self, venue: str, symbol: str, kind: str) -> Tape | None:
        return self.tapes.get((venue, f"{symbol.lower()}@{kind}"))

    def preload(self, count: int) -> None:
        """Mark the first ``count`` payloads of every tape as already traded (history for REST)."""
        for tape in self.tapes.values():
            tape.released = min(len(tape.payloads), max(tape.released, count))

    def clock_ms(self, venue: str) -> int:
        """Server time: the trade time of the newest released trade (recorded tapes keep their clock)."""
        latest = 0
        for tape in self.tapes.values():
            if tape.venue == venue and tape.released and tape.kind in ("trade", "aggTrade"):
                latest = max(latest, int(tape.payloads[tape.released - 1]["T"]))
        return latest or int(time.time() * 1000)

    # -- sockets ----------------------------------------------------------------------------------
    def add_client(self, client: Client) -> None:
        self.clients.add(client)
        kind_of = {t.stream: t.kind for t in self.tapes.values()}
        for stream in client.routed(kind_of):
            self.subscribers.setdefault((client.venue, stream), set()).add(client)

    def remove_client(self, client: Client) -> None:
        self.clients.discard(client)
        self.closed_clients.append(client)
        self._unsubscribe(client)

    def resubscribe(self, client: Client) -> None:
        self._unsubscribe(client)
        self.add_client(client)

    def _unsubscribe(self, client: Client) -> None:
        for subs in self.subscribers.values():
            subs.discard(client)

    def _deliver(self, tape: Tape, index: int) -> None:
        subs = self.subscribers.get((tape.venue, tape.stream))
        if not subs or self.silence_all or (tape.venue, tape.stream) in self.silenced:
            return
        ranges = self.skipped.get((tape.venue, tape.stream))
        if ranges and tape.kind in ("trade", "aggTrade"):
            tid = tape.trade_id(index)
            if any(a <= tid <= b for a, b in ranges):
                return
        frame = tape.wire[index]
        for client in subs:
            client.queue.append(orjson.dumps(tape.payloads[index]).decode() if client.raw else frame)
            client.wake.set()

    def _deliver_range(self, tape: Tape, start: int, end: int) -> None:
        subs = self.subscribers.get((tape.venue, tape.stream))
        if not subs:
            return
        if self.skipped.get((tape.venue, tape.stream)) or any(c.raw for c in subs):
            for i in range(start, end):
                self._deliver(tape, i)
            return
        if self.silence_all or (tape.venue, tape.stream) in self.silenced:
            return
        chunk = tape.wire[start:end]  # the common case, in one slice: the benchmark's full-speed path
        for client in subs:
            client.queue.extend(chunk)
            client.wake.set()

    def broadcast(self, text: str, venue: str | None = None) -> int:
        n = 0
        for client in self.clients:
            if venue is None or client.venue == venue:
                client.queue.append(text)
                client.wake.set()
                n += 1
        return n

    # -- the clock --------------------------------------------------------------------------------
    def play(self, rate_per_s: float | None) -> None:
        self.rate_per_s = rate_per_s
        if self._playing is None or self._playing.done():
            self._playing = asyncio.get_running_loop().create_task(self._release_loop())

    def pause(self) -> None:
        if self._playing is not None:
            self._playing.cancel()
            self._playing = None

    def finished(self) -> bool:
        return all(t.released >= len(t.payloads) for t in self.tapes.values() if t.kind in ("trade", "aggTrade"))

    async def _release_loop(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        base = {key: tape.released for key, tape in self.tapes.items()}
        while True:
            elapsed = loop.time() - start
            for key, tape in self.tapes.items():
                if self.rate_per_s is None:
                    target = tape.released + 256
                else:
                    target = base[key] + int(elapsed * self.rate_per_s)
                target = min(target, len(tape.payloads))
                if target > tape.released:
                    self._deliver_range(tape, tape.released, target)
                tape.released = max(tape.released, target)
            if all(t.released >= len(t.payloads) for t in self.tapes.values()):
                return
            await asyncio.sleep(0 if self.rate_per_s is None else 0.005)

    # -- REST weight ------------------------------------------------------------------------------
    def charge(self, weight: int) -> int:
        minute = int(time.time() // 60)
        if minute != self.weight_minute:
            self.weight_minute, self.weight_used = minute, 0
        self.weight_used += weight
        return self.weight_used

    def payload_rows(self, venue: str, symbol: str, kind: str) -> list[dict[str, Any]] | None:
        tape = self.tape(venue, symbol, kind)
        if tape is None:
            return None
        rows = tape.released_payloads()
        hidden = self.rest_hidden.get((venue, tape.stream))
        if hidden:
            key = tape.id_field
            rows = [r for r in rows if not any(a <= int(r[key]) <= b for a, b in hidden)]
        return rows


__all__ = ["Client", "Exchange", "RestCall", "SPOT", "USDM", "delivers", "usdm_category"]
