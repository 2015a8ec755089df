"""Per trade stream: publish every trade id exactly once, in id order, filling holes from REST.

Binance never replays after a disconnect and trades carry no sequence number other than their id
(``t`` for trade, ``a`` for aggTrade), so the id is the sequence. The socket reader calls
``on_live`` and never waits: a tick that continues the sequence is offered to the publisher; any
other tick (a hole before it, a catch-up in progress, or a full publisher queue) is held, and one
catch-up task per stream fetches the missing ids from REST and publishes them, then the held ticks,
in order, with back-pressure. Ids that REST cannot deliver before the deadline become a ``GapEvent``.
Overlap (two sockets during a rotation, REST rows also seen live) is dropped by id.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from services.ingest.live.history import TradeHistory
from services.ingest.live.plan import StreamSpec
from services.ingest.live.settings import LiveSettings
from shared.errors import PairsError
from shared.messages import GapEvent, Source, Tick
from shared.timeutil import now_us

log = logging.getLogger(__name__)


class TickSink(Protocol):
    def offer(self, tick: Tick) -> bool: ...
    async def put(self, tick: Tick) -> None: ...


ToTick = Callable[[dict[str, Any], Source], Tick]
GapSink = Callable[[GapEvent], Awaitable[None]]


@dataclass
class SequencerStats:
    last_trade_id: int | None = None
    published_live: int = 0
    published_backfill: int = 0
    published_seed: int = 0
    duplicates: int = 0
    gaps_detected: int = 0
    catch_ups: int = 0
    ids_unfilled: int = 0
    gap_events: int = 0
    held_overflow: int = 0
    queue_full: int = 0
    seed_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StreamSequencer:
    def __init__(
        self,
        spec: StreamSpec,
        sink: TickSink,
        history: TradeHistory,
        to_tick: ToTick,
        gap_sink: GapSink,
        settings: LiveSettings,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.history = history
        self.to_tick = to_tick
        self.gap_sink = gap_sink
        self.settings = settings
        self.stats = SequencerStats()
        self.last_id: int | None = None
        self.held: deque[Tick] = deque()
        self.catching_up = False
        self._open_ended = False  # fetch until REST has nothing newer (after a reconnect or for the seed)
        self._rest_source: Source = "backfill"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- called by the socket reader (never awaits) -------------------------------------------------
    def on_live(self, tick: Tick) -> None:
        tid = tick.trade_id
        last = self.last_id
        if last is not None and tid <= last:
            self.stats.duplicates += 1
            return
        if self.catching_up:
            self._hold(tick)
            return
        if last is None or tid == last + 1:
            if self.sink.offer(tick):
                self.last_id = tid
                self.stats.published_live += 1
                return
            self.stats.queue_full += 1  # the catch-up task publishes it with back-pressure
            self._hold(tick)
            self._start(grace=False)
            return
        self.stats.gaps_detected += 1
        log.info("%s: trade ids %d..%d missing on the socket", self.spec.instrument, last + 1, tid - 1)
        self._hold(tick)
        self._start(grace=True)

    def on_reconnect(self) -> None:
        """A socket for this stream (re)opened: trades during the outage were never sent to us."""
        if self.last_id is None:
            return
        self._open_ended = True
        self._start(grace=False)

    def start_seed(self) -> None:
        """Hold live ticks and load recent history first (source "seed")."""
        self._open_ended = True
        self._rest_source = "seed"
        self.catching_up = True
        self._task = asyncio.create_task(self._seed_then_catch_up(), name=f"seed:{self.spec.instrument}")

    def resume_after(self, last_published_id: int) -> None:
        """Continue a previous run: fetch every id after ``last_published_id`` before live ticks."""
        self.last_id = last_published_id
        self._open_ended = True
        self._start(grace=False)

    @property
    def busy(self) -> bool:
        return self.catching_up

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    # -- internals ------------------------------------------------------------------------------
    def _hold(self, tick: Tick) -> None:
        held = self.held
        tid = tick.trade_id
        if not held or tid > held[-1].trade_id:
            held.append(tick)
        else:
            # Out of order (a sibling socket during a rotation): insert by id, drop a duplicate.
            ids = [t.trade_id for t in held]
            pos = bisect.bisect_left(ids, tid)
            if pos < len(ids) and ids[pos] == tid:
                self.stats.duplicates += 1
                return
            held.insert(pos, tick)
        if len(held) > self.settings.held_ticks_max:
            held.popleft()  # the oldest held id is re-fetched from REST: bounded memory, nothing lost
            self.stats.held_overflow += 1

    def _start(self, grace: bool) -> None:
        if self.catching_up:
            return
        self.catching_up = True
        self.stats.catch_ups += 1
        self._task = asyncio.create_task(self._catch_up(grace), name=f"catch-up:{self.spec.instrument}")

    async def _seed_then_catch_up(self) -> None:
        deadline = time.monotonic() + self.settings.backfill_deadline_s
        try:
            start = await self.history.seed_start_id(self.spec, self.settings.seed_lookback_s, deadline)
        except (PairsError, OSError) as exc:
            self.stats.seed_failed += 1
            log.warning("%s: seeding failed (%s); starting from the live stream", self.spec.instrument, exc)
            start = None
        if start is not None:
            self.last_id = start - 1
        else:
            self._open_ended = False
        await self._catch_up(grace=False)

    async def _catch_up(self, grace: bool) -> None:
        try:
            if grace and self.settings.gap_grace_s > 0:
                await asyncio.sleep(self.settings.gap_grace_s)  # a sibling socket may still deliver the ids
            await self._catch_up_loop(time.monotonic() + self.settings.backfill_deadline_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: catch-up failed; holding ticks for the next attempt", self.spec.instrument)
            self._open_ended = False
            await self._drop_to_gap_and_drain("catch-up error")
        finally:
            self._rest_source = "backfill"
            self.catching_up = False
            self.stats.last_trade_id = self.last_id
            if self.held and not self._stopping:
                # ticks arrived after the last drain: resume so none stay parked
                self._start(grace=False)

    async def _catch_up_loop(self, deadline: float) -> None:
        while True:
            await self._drain_contiguous()
            if not self.held and not self._open_ended:
                return
            if self.last_id is None:
                self.last_id = self.held[0].trade_id - 1  # nothing published yet: the first held tick starts the series
                continue
            first_missing = self.last_id + 1
            target = self.held[0].trade_id - 1 if self.held else None
            if target is not None and target < first_missing:
                continue
            want = self.settings.rest_page_limit if target is None else target - first_missing + 1
            try:
                payloads = await self.history.page_from(self.spec, first_missing, want, deadline)
            except (PairsError, OSError) as exc:
                if target is None:
                    log.warning("%s: REST catch-up failed (%s); the next live id reveals the gap",
                                self.spec.instrument, exc)
                    self._open_ended = False
                    continue
                await self._gap(first_missing, target, f"rest failed: {exc}")
                continue
            await self._publish_rest(payloads, first_missing, target)
            deadline = time.monotonic() + self.settings.backfill_deadline_s  # progress: the deadline is for failing
            if target is None and len(payloads) < want:
                self._open_ended = False  # REST has nothing newer: caught up

    async def _publish_rest(self, payloads: list[dict[str, Any]], first_missing: int, target: int | None) -> None:
        expected = first_missing
        for payload in payloads:
            try:
                tick = self.to_tick(payload, self._rest_source)
            except PairsError as exc:
                log.warning("%s: skipping a malformed REST row (%s)", self.spec.instrument, exc)
                continue
            if tick.trade_id < expected:
                continue
            if tick.trade_id > expected:
                await self._gap(expected, tick.trade_id - 1, "ids not returned by REST")
            self.last_id = expected = tick.trade_id
            expected += 1
            await self.sink.put(tick)
            if self._rest_source == "seed":
                self.stats.published_seed += 1
            else:
                self.stats.published_backfill += 1
        if target is not None and expected <= target and (not payloads or len(payloads) < target - first_missing + 1):
            # REST answered fewer rows than asked although newer ids exist (we hold them): they are gone.
            await self._gap(expected, target, "ids not returned by REST")

    async def _drain_contiguous(self) -> None:
        held = self.held
        while held:
            tick = held[0]
            last = self.last_id
            if last is not None and tick.trade_id <= last:
                held.popleft()
                self.stats.duplicates += 1
                continue
            if last is not None and tick.trade_id != last + 1:
                return
            held.popleft()
            self.last_id = tick.trade_id
            self.stats.published_live += 1
            await self.sink.put(tick)

    async def _gap(self, first: int, last: int, reason: str) -> None:
        """Give up ids ``first..last``: publish a GapEvent and move the sequence past them."""
        n = last - first + 1
        self.stats.ids_unfilled += n
        self.stats.gap_events += 1
        ts_event = self.held[0].ts_event_us if self.held else now_us()
        log.error("%s: trade ids %d..%d (%d) lost: %s", self.spec.instrument, first, last, n, reason)
        event = GapEvent(instrument=self.spec.instrument, first_missing=first, last_missing=last,
                         ts_event_us=ts_event, ts_ingest_us=now_us(), reason=reason[:200])
        try:
            await self.gap_sink(event)
        except Exception:
            log.exception("%s: could not publish the gap event", self.spec.instrument)
        self.last_id = max(self.last_id or last, last)

    async def _drop_to_gap_and_drain(self, reason: str) -> None:
        if self.held and self.last_id is not None and self.held[0].trade_id > self.last_id + 1:
            await self._gap(self.last_id + 1, self.held[0].trade_id - 1, reason)
        await self._drain_contiguous()
