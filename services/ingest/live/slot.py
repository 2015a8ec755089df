"""Keep one connection plan flowing: reconnect with backoff, rotate before 24 h, obey serverShutdown.

Rotation and shutdown notices use an overlap: the new socket comes up first, both feed the same
sequencers (which drop the overlap by trade id) until the new one has delivered on every stream the
old one was delivering, then the old one is closed. A hole between the two is filled from REST by
the sequencer like any other gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from services.ingest.live.backoff import Backoff
from services.ingest.live.connection import FeedConnection, OnTick
from services.ingest.live.plan import ConnectionPlan
from services.ingest.live.sequencer import StreamSequencer
from services.ingest.live.settings import LiveSettings
from shared.timeutil import now_us

log = logging.getLogger(__name__)

_HANDOVER_POLL_S = 0.02
_ROTATION_RETRY_S = 60.0


def next_rotation_delay_s(opened: datetime, now: datetime, rotate_after_s: float, rotate_at_utc: str) -> float:
    """Seconds from ``now`` until the socket opened at ``opened`` should be rotated.

    At the age limit, or earlier at the next daily ``HH:MM`` UTC quiet time when one is set.
    """
    due = opened + timedelta(seconds=rotate_after_s)
    if rotate_at_utc:
        hh, mm = (int(p) for p in rotate_at_utc.split(":"))
        quiet = opened.replace(hour=hh, minute=mm, second=0, microsecond=0)
        if quiet <= opened:
            quiet += timedelta(days=1)
        due = min(due, quiet)
    return max(0.0, (due - now).total_seconds())


class ConnectionSlot:
    def __init__(self, plan: ConnectionPlan, settings: LiveSettings, on_tick: OnTick,
                 sequencers: list[StreamSequencer], name: str) -> None:
        self.plan = plan
        self.settings = settings
        self.on_tick = on_tick
        self.sequencers = sequencers
        self.name = name
        self.current: FeedConnection | None = None
        self.connects = 0
        self.reconnects = 0
        self.rotations = 0
        self.failed_rotations = 0
        self.connect_failures = 0
        self.last_error = ""
        self.down_since_us: int | None = now_us()
        self._stop = asyncio.Event()
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_factor, settings.backoff_max_s,
                                settings.backoff_jitter)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            conn = FeedConnection(self.plan, self.settings, self.on_tick)
            try:
                await conn.open()
            except Exception as exc:  # refused, timed out, bad handshake (HTTP 4xx/5xx), DNS...
                self.connect_failures += 1
                self.last_error = f"connect failed: {exc!r}"[:300]
                log.warning("%s: %s", self.name, self.last_error)
                await self._sleep(self._backoff.next_delay())
                continue
            self.connects += 1
            if self.connects > 1:
                self.reconnects += 1
            self.down_since_us = None
            self.current = conn
            for seq in self.sequencers:
                seq.on_reconnect()
            last = await self._supervise(conn)
            self.current = None
            self.down_since_us = now_us()
            self.last_error = last.close_reason
            if (now_us() - last.opened_us) / 1e6 >= self.settings.healthy_after_s:
                self._backoff.reset()
            if not self._stop.is_set():
                await self._sleep(self._backoff.next_delay())

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _supervise(self, conn: FeedConnection) -> FeedConnection:
        """Serve ``conn`` and its rotated successors; returns the last one once it has closed."""
        serve = asyncio.create_task(conn.serve(), name=f"serve:{conn.id}")
        retry_rotation_at = 0.0
        while True:
            opened = datetime.fromtimestamp(conn.opened_us / 1e6, UTC)
            delay = next_rotation_delay_s(opened, datetime.now(UTC), self.settings.rotate_after_s,
                                          self.settings.rotate_at_utc)
            delay = max(delay, retry_rotation_at - time.monotonic())
            waiters = {serve, asyncio.create_task(self._stop.wait()), asyncio.create_task(conn.shutdown_notice.wait())}
            done, pending = await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for task in pending - {serve}:
                task.cancel()
            if serve in done:
                return conn
            if self._stop.is_set():
                await conn.close("stopping")
                await serve
                return conn
            why = "serverShutdown" if conn.shutdown_notice.is_set() else "planned rotation"
            replaced = await self._handover(conn, serve, why)
            if replaced is None:
                self.failed_rotations += 1
                retry_rotation_at = time.monotonic() + min(_ROTATION_RETRY_S, self.settings.rotate_after_s)
                conn.shutdown_notice.clear()
                continue
            conn, serve = replaced
            self.current = conn
            self.rotations += 1
            retry_rotation_at = 0.0

    async def _handover(self, old: FeedConnection, old_serve: asyncio.Task[str],
                        why: str) -> tuple[FeedConnection, asyncio.Task[str]] | None:
        log.info("%s: %s of %s", self.name, why, old.id)
        new = FeedConnection(self.plan, self.settings, self.on_tick)
        try:
            await new.open()
        except Exception as exc:
            log.warning("%s: %s: the new connection failed (%r); keeping %s", self.name, why, exc, old.id)
            return None
        serve = asyncio.create_task(new.serve(), name=f"serve:{new.id}")
        recent_us = now_us() - int(self.settings.watchdog_silence_s * 1e6)
        wanted = {name for name, st in old.streams.items() if st.messages and st.last_message_us >= recent_us}
        deadline = time.monotonic() + self.settings.rotate_handover_timeout_s
        while time.monotonic() < deadline and not serve.done():
            heard = new.streams_heard()
            if heard and wanted <= heard:
                break
            if old_serve.done() and heard:
                break
            await asyncio.sleep(_HANDOVER_POLL_S)
        if serve.done() or not new.streams_heard():
            log.warning("%s: %s: %s delivered nothing; keeping %s", self.name, why, new.id, old.id)
            await new.close("handover failed")
            await asyncio.gather(serve, return_exceptions=True)
            return None
        await old.close(f"replaced by {new.id} ({why})")
        await asyncio.gather(old_serve, return_exceptions=True)
        log.info("%s: %s handed over to %s", self.name, old.id, new.id)
        return new, serve

