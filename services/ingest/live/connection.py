"""One WebSocket to Binance: read frames, hand trades on, watch every stream for silence.

The reader never waits on anything but the socket: trades go to a synchronous callback (the
sequencer, which only offers to the publisher's queue). Pings are answered by ``websockets``
itself with the ping's payload, as Binance requires; we send no pings of our own (each would count
against the per-second incoming-message limit). A stream that stays silent for
``watchdog_silence_s`` -- e.g. a USD-M market stream on the wrong route, which acks and then sends
nothing -- makes the whole socket count as dead; the slot then builds a new one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from services.ingest.live.frames import inspect_frame
from services.ingest.live.plan import ConnectionPlan, StreamSpec
from services.ingest.live.settings import LiveSettings
from services.ingest.normalize import parse_combined_frame
from shared.errors import DecodeError
from shared.messages import Tick
from shared.timeutil import now_us

log = logging.getLogger(__name__)

OnTick = Callable[[StreamSpec, Tick], None]
_ids = itertools.count(1)
_MALFORMED_LOG_EVERY = 1000


@dataclass
class StreamState:
    spec: StreamSpec
    last_message_us: int
    messages: int = 0


@dataclass
class ConnectionStats:
    messages: int = 0
    trades: int = 0
    malformed: int = 0
    unexpected: int = 0
    acks: int = 0
    callback_errors: int = 0
    shutdown_notices: int = 0


class FeedConnection:
    def __init__(self, plan: ConnectionPlan, settings: LiveSettings, on_tick: OnTick) -> None:
        self.plan = plan
        self.settings = settings
        self.on_tick = on_tick
        self.id = f"ws{next(_ids)}"
        self.stats = ConnectionStats()
        self.streams: dict[str, StreamState] = {}
        self._by_instrument = {s.instrument: s for s in plan.streams if s.carries_trades}
        self._ws: ClientConnection | None = None
        self.opened_us = 0
        self.closed_us = 0
        self.close_reason = ""
        self.shutdown_notice = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.closed_us == 0

    def streams_heard(self) -> set[str]:
        return {name for name, st in self.streams.items() if st.messages}

    async def open(self) -> None:
        self._ws = await connect(
            self.plan.url,
            open_timeout=self.settings.open_timeout_s,
            close_timeout=self.settings.close_timeout_s,
            ping_interval=None,
            max_size=self.settings.max_frame_bytes,
            compression=None,
            max_queue=1024,  # frames buffered before reading pauses: fewer flow-control round trips
        )
        self.opened_us = now_us()
        self.streams = {s.name: StreamState(s, self.opened_us) for s in self.plan.streams}
        log.info("%s open %s (%d streams)", self.id, self.plan.label, len(self.plan.streams))

    async def serve(self) -> str:
        """Read until the socket closes (or the watchdog closes it); returns why it ended."""
        assert self._ws is not None, "open() first"
        watchdog = asyncio.create_task(self._watchdog(), name=f"watchdog:{self.id}")
        try:
            await self._read(self._ws)
        finally:
            watchdog.cancel()
            self.closed_us = now_us()
        log.warning("%s closed: %s", self.id, self.close_reason)
        return self.close_reason

    async def close(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        if self._ws is not None:
            await self._ws.close()

    async def _read(self, ws: ClientConnection) -> None:
        venue = self.plan.venue
        streams = self.streams
        by_instrument = self._by_instrument
        stats = self.stats
        on_tick = self.on_tick
        try:
            async for raw in ws:
                ts = now_us()
                stats.messages += 1
                try:
                    tick = parse_combined_frame(raw, venue, ts)
                except DecodeError as exc:
                    self._not_a_trade(raw, ts, exc)
                    continue
                if tick is None:
                    self._not_a_trade(raw, ts, None)
                    continue
                spec = by_instrument.get(tick.instrument)
                if spec is None:
                    stats.unexpected += 1
                    continue
                state = streams[spec.name]
                state.last_message_us = ts
                state.messages += 1
                stats.trades += 1
                try:
                    on_tick(spec, tick)
                except Exception:  # a bug downstream must not kill the socket; it is counted and logged
                    stats.callback_errors += 1
                    log.exception("%s: tick handler failed for %s/%d", self.id, tick.instrument, tick.trade_id)
        except ConnectionClosed as exc:
            if not self.close_reason:
                self.close_reason = f"connection closed ({exc})"
            return
        if not self.close_reason:
            self.close_reason = "server closed the connection"

    def _not_a_trade(self, raw: str | bytes, ts: int, error: DecodeError | None) -> None:
        info = inspect_frame(raw)
        if info is not None and info.shutdown:
            self.stats.shutdown_notices += 1
            log.warning("%s: serverShutdown notice: replacing the connection", self.id)
            self.shutdown_notice.set()
            return
        if error is not None or info is None:
            self.stats.malformed += 1
            if self.stats.malformed % _MALFORMED_LOG_EVERY == 1:
                log.warning("%s: malformed frame #%d (%s): %r", self.id, self.stats.malformed, error, raw[:120])
            return
        if info.ack:
            self.stats.acks += 1
            return
        state = self.streams.get(info.stream or "")
        if state is None:
            self.stats.unexpected += 1
            return
        state.last_message_us = ts
        state.messages += 1

    async def _watchdog(self) -> None:
        limit_us = int(self.settings.watchdog_silence_s * 1e6)
        while True:
            await asyncio.sleep(self.settings.watchdog_interval_s)
            now = now_us()
            silent = [(name, now - st.last_message_us) for name, st in self.streams.items()
                      if now - st.last_message_us > limit_us]
            if silent:
                name, age = max(silent, key=lambda x: x[1])
                reason = f"watchdog: stream {name} silent for {age / 1e6:.1f} s"
                log.warning("%s %s (%d silent streams): rebuilding the connection", self.id, reason, len(silent))
                await self.close(reason)
                return
