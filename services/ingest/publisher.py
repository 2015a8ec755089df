"""Queue between tick sources and Redis: batched, pipelined XADD with trimming, retries and counters.

Sources only enqueue (``put`` waits when full: replay backpressure; ``offer`` never waits: the live
socket reader must not stall, so a full queue drops the tick and counts it, and the live side
backfills the missing trade ids). One writer task drains the queue in batches and sends one
non-transactional pipeline of ``XADD ticks:{instrument} MINID ~ <floor> * data <tick>`` per batch,
where floor = min(now - retention, the oldest entry a consumer group still needs: shared/trimming.py), so Redis latency never reaches the reader. ``write_mode="packed"`` (default) encodes
that pipeline itself; ``"redis-py"`` uses ``Pipeline(transaction=False)`` (same commands, slower;
kept as the reference the benchmark compares against).

Delivery is at-least-once: a pipeline that fails on a connection error is resent whole, and some
of its entries may already have been applied, so consumers de-duplicate by (instrument, trade_id).
Entries refused with a transient error reply (OOM, LOADING, ...) are resent after the batch, so
only in that case can a stream's order differ from the queue's.
Stream entry ids come from Redis' clock (arrival time), so MINID trimming keeps recent arrivals
even when replaying old data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.errors import PairsError
from shared.messages import STREAM_FIELD, Tick, encode
from shared.observability import ServiceMetrics
from shared.streams import TICK_RETENTION_SECONDS_DEFAULT, Keys
from shared.timeutil import now_us
from shared.trimming import min_id, oldest_needed_ids

from .resp import resp_bulk, resp_command_head, send_pipeline

log = logging.getLogger(__name__)

WriteMode = Literal["packed", "redis-py"]

# Redis error replies that a later retry can fix (server loading, OOM until trimming frees memory,
# failover in progress); any other error reply is permanent for that entry.
_TRANSIENT_REPLY_PREFIXES = ("LOADING", "OOM", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN")
_TRANSIENT_EXCEPTIONS = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)


@dataclass(frozen=True, slots=True)
class PublisherStats:
    published: int
    dropped_overflow: int
    rejected: int  # permanent Redis error replies (e.g. WRONGTYPE on the key): logged, not retried
    batches: int
    redis_errors: int  # transient failures that were retried
    queued: int
    latency_p50_us: float | None  # receive (tick.ts_ingest_us) -> XADD acknowledged
    latency_p99_us: float | None
    latency_samples: int
    published_by_instrument: dict[str, int] = field(default_factory=dict)


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, initial * 2**attempt)]."""
    return random.uniform(0.0, min(max_s, initial_s * (2.0 ** min(attempt, 30))))


class TickPublisher:
    """Batches ticks into pipelined XADDs on one Redis connection pool (asyncio)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        queue_size: int = 100_000,
        batch_size: int = 500,
        retention_s: int = TICK_RETENTION_SECONDS_DEFAULT,
        latency_window: int = 100_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        write_mode: WriteMode = "packed",
        reply_timeout_s: float = 30.0,
        trim_refresh_s: float = 5.0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or retention_s < 1:
            raise ValueError("queue_size, batch_size and retention_s must be >= 1")
        if write_mode not in ("packed", "redis-py"):
            raise ValueError(f"write_mode must be 'packed' or 'redis-py', got {write_mode!r}")
        self._write_mode = write_mode
        self._reply_timeout_s = reply_timeout_s
        self._redis = redis
        self._keys = keys
        # A bounded deque with three events instead of asyncio.Queue: a third of the per-tick cost.
        self._buffer: collections.deque[Tick] = collections.deque()
        self._maxsize = queue_size
        self._has_data = asyncio.Event()  # set while the buffer may hold ticks
        self._has_room = asyncio.Event()  # set after the writer takes a batch
        self._drained = asyncio.Event()  # set when the buffer is empty and nothing is in flight
        self._in_flight = 0
        self._batch_size = batch_size
        self._retention_ms = retention_s * 1000
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._stream_keys: dict[str, bytes] = {}
        # Per instrument: the oldest entry a consumer group still needs (trimming stops there).
        self._group_floor: dict[str, str | None] = {}
        self._trim_refresh_s = trim_refresh_s
        self._metrics = metrics
        self._floor_refreshed = 0.0
        self._latencies: collections.deque[int] = collections.deque(maxlen=latency_window)
        self._published_by_instrument: collections.Counter[str] = collections.Counter()
        self._published = 0
        self._dropped_overflow = 0
        self._rejected = 0
        self._batches = 0
        self._redis_errors = 0
        self._closed = False
        self._run_task: asyncio.Task | None = None
        self._own_task: asyncio.Task | None = None

    # -- producer side -------------------------------------------------------------------------

    async def put(self, tick: Tick) -> None:
        """Enqueue, waiting while the queue is full (backpressure; nothing is dropped)."""
        if self._closed:
            raise PairsError("publisher is closed")
        buffer = self._buffer
        while len(buffer) >= self._maxsize:
            self._has_room.clear()
            await self._has_room.wait()
        buffer.append(tick)
        self._has_data.set()

    def offer(self, tick: Tick) -> bool:
        """Enqueue without waiting; on a full queue count the tick as ``dropped_overflow``, return False."""
        if self._closed:
            raise PairsError("publisher is closed")
        if len(self._buffer) >= self._maxsize:
            self._dropped_overflow += 1
            return False
        self._buffer.append(tick)
        self._has_data.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._buffer)

    # -- writer side ---------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        """Run the writer as a background task owned by this publisher (``close`` stops it)."""
        if self._own_task is None or self._own_task.done():
            self._own_task = asyncio.create_task(self.run(), name="tick-publisher")
        return self._own_task

    async def run(self) -> None:
        """Drain the queue forever: one pipeline per batch of up to ``batch_size`` ticks."""
        self._run_task = asyncio.current_task()
        buffer = self._buffer
        while True:
            if not buffer:
                self._drained.set()
                self._has_data.clear()
                await self._has_data.wait()
                continue
            n = min(len(buffer), self._batch_size)
            batch = [buffer.popleft() for _ in range(n)]
            self._in_flight = n
            self._has_room.set()
            try:
                await self._send(batch)
            finally:
                self._in_flight = 0

    async def _send(self, batch: list[Tick]) -> None:
        pending = batch
        attempt = 0
        while pending:
            try:
                replies = await self._pipeline(pending)
            except _TRANSIENT_EXCEPTIONS as exc:
                self._redis_errors += 1
                delay = backoff_delay(attempt, self._retry_initial_s, self._retry_max_s)
                log.warning(
                    "redis pipeline failed (%s: %s); retrying %d ticks in %.2fs",
                    type(exc).__name__, exc, len(pending), delay,
                )
                attempt += 1
                await asyncio.sleep(delay)
                continue
            done_us = now_us()
            retry: list[Tick] = []
            ok: list[Tick] = []
            first_error: Exception | None = None
            for tick, reply in zip(pending, replies, strict=True):
                if not isinstance(reply, Exception):
                    ok.append(tick)
                elif isinstance(reply, ResponseError) and str(reply).startswith(_TRANSIENT_REPLY_PREFIXES):
                    retry.append(tick)
                    first_error = first_error or reply
                else:
                    self._rejected += 1
                    log.error("redis rejected tick %s/%d: %s", tick.instrument, tick.trade_id, reply)
            self._record(ok, done_us)
            self._batches += 1
            if retry:
                self._redis_errors += 1
                delay = backoff_delay(attempt, self._retry_initial_s, self._retry_max_s)
                log.warning("redis refused %d ticks (%s); retrying in %.2fs", len(retry), first_error, delay)
                attempt += 1
                await asyncio.sleep(delay)
            pending = retry

    async def _minids(self, ticks: list[Tick]) -> dict[str, bytes]:
        """Trim point per instrument: now - retention, but never past what a consumer group needs."""
        now = time.monotonic()
        if now - self._floor_refreshed >= self._trim_refresh_s:
            self._floor_refreshed = now
            instruments = sorted({t.instrument for t in ticks} | set(self._group_floor))
            floors = await oldest_needed_ids(self._redis, [self._keys.ticks(i) for i in instruments])
            for instrument in instruments:
                self._group_floor[instrument] = floors[self._keys.ticks(instrument)]
        by_time = f"{int(time.time() * 1000) - self._retention_ms}-0"
        return {
            inst: min_id(by_time, self._group_floor.get(inst)).encode() for inst in {t.instrument for t in ticks}
        }

    async def _pipeline(self, ticks: list[Tick]) -> list:
        minids = await self._minids(ticks)
        if self._write_mode == "packed":
            return await self._packed_pipeline(ticks, minids)
        keys = self._stream_keys
        pipe = self._redis.pipeline(transaction=False)
        for tick in ticks:
            key = keys.get(tick.instrument)
            if key is None:
                key = keys[tick.instrument] = self._keys.ticks(tick.instrument).encode()
            pipe.execute_command("XADD", key, "MINID", "~", minids[tick.instrument], "*", STREAM_FIELD, encode(tick))
        return await pipe.execute(raise_on_error=False)

    async def _packed_pipeline(self, ticks: list[Tick], minids: dict[str, bytes]) -> list:
        heads: dict[str, bytes] = {}
        parts: list[bytes] = []
        for tick in ticks:
            head = heads.get(tick.instrument)
            if head is None:
                key = self._stream_keys.get(tick.instrument)
                if key is None:
                    key = self._stream_keys[tick.instrument] = self._keys.ticks(tick.instrument).encode()
                head = heads[tick.instrument] = resp_command_head(
                    (b"XADD", key, b"MINID", b"~", minids[tick.instrument], b"*", STREAM_FIELD), total=8
                )
            parts.append(head)
            parts.append(resp_bulk(encode(tick)))
        return await send_pipeline(self._redis, b"".join(parts), len(ticks), self._reply_timeout_s)

    def _record(self, ticks: list[Tick], done_us: int) -> None:
        if not ticks:
            return
        self._published += len(ticks)
        self._latencies.extend(done_us - t.ts_ingest_us for t in ticks)
        counts = self._published_by_instrument
        for t in ticks:
            counts[t.instrument] += 1
        if self._metrics is not None:
            # Per batch, not per tick: one latency sample (the batch's oldest tick) keeps this cheap.
            for instrument, n in collections.Counter(t.instrument for t in ticks).items():
                self._metrics.ticks_out.labels(instrument).inc(n)
            self._metrics.publish_latency.observe((done_us - ticks[0].ts_ingest_us) / 1e6)

    # -- lifecycle -----------------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued tick is in Redis (``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while self._buffer or self._in_flight:
                writer = self._run_task or self._own_task
                if writer is None:
                    raise PairsError("flush() needs the writer running: call start() or run() first")
                if writer.done():
                    raise PairsError(f"the publisher's writer stopped with {len(self._buffer)} ticks queued")
                self._drained.clear()
                with contextlib.suppress(TimeoutError):  # re-check the writer every second
                    await asyncio.wait_for(self._drained.wait(), 1.0)

    async def close(self, timeout: float | None = None) -> None:
        """Stop accepting ticks, flush what is queued (up to ``timeout``), then stop the writer."""
        self._closed = True
        try:
            if self._run_task is not None or self._own_task is not None:
                await self.flush(timeout)
        finally:
            for task in {self._run_task, self._own_task} - {None}:
                if task is not asyncio.current_task() and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if self._buffer:
                log.error("publisher closed with %d ticks not sent", len(self._buffer))

    async def __aenter__(self) -> TickPublisher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- counters ------------------------------------------------------------------------------

    def latency_percentile(self, q: float) -> float | None:
        """Percentile ``q`` (0-100) of receive->XADD latency in µs over the recent window."""
        if not self._latencies:
            return None
        return float(np.percentile(np.fromiter(self._latencies, dtype=np.int64), q))

    def stats(self) -> PublisherStats:
        return PublisherStats(
            published=self._published,
            dropped_overflow=self._dropped_overflow,
            rejected=self._rejected,
            batches=self._batches,
            redis_errors=self._redis_errors,
            queued=len(self._buffer),
            latency_p50_us=self.latency_percentile(50),
            latency_p99_us=self.latency_percentile(99),
            latency_samples=len(self._latencies),
            published_by_instrument=dict(self._published_by_instrument),
        )
