"""Live relay: one client's view of the metric and tick streams, read with plain XREAD from its own position.

No consumer group: every client gets every entry, and nothing is left behind in Redis when it goes.
A reader task pulls entries into a bounded queue (never more than it has room for); the transport
(WebSocket or SSE) drains it. When the queue stays full for ``slow_grace_s`` the client is too slow:
the relay stops with ``ClientTooSlow`` rather than buffering without bound, so one slow client costs
at most ``queue_size`` frames of memory and never delays the others (each has its own reader). A
burst larger than the queue is fine: the rest waits in Redis, at the client's own position.

Frames are JSON text: ``{"channel": "metrics"|"ticks", "key": <pair or instrument>, "id": <stream id>,
"data": <the record as published>}``; ``{"channel": "heartbeat", "ts_us": ...}`` when idle; and
``{"channel": "error", "problem": ...}`` just before the relay closes on a problem.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from shared.errors import InvalidInput
from shared.instruments import Instrument, Pair
from shared.streams import Keys
from shared.timeutil import now_us

STREAM_ID = re.compile(r"^\$$|^\d{1,20}(-\d{1,20})?$")
MAX_SUBSCRIPTIONS = 50


class ClientTooSlow(Exception):
    """The client's queue overflowed: it reads slower than the streams are written."""


@dataclass(frozen=True)
class Subscription:
    """Redis stream key -> (channel, name) for each subscribed pair and instrument."""

    streams: dict[str, tuple[str, str]]
    since: str

    @classmethod
    def parse(cls, keys: Keys, pairs: str | None, instruments: str | None, since: str) -> Subscription:
        streams: dict[str, tuple[str, str]] = {}
        for text in _items(pairs):
            try:
                pid = Pair.parse(text).id
            except InvalidInput as exc:
                raise _field_error("pairs", str(exc)) from None
            streams[keys.metrics(pid)] = ("metrics", pid)
        for text in _items(instruments):
            try:
                iid = Instrument.parse(text).id
            except InvalidInput as exc:
                raise _field_error("instruments", str(exc)) from None
            streams[keys.ticks(iid)] = ("ticks", iid)
        if not streams:
            raise _field_error("pairs", "subscribe to at least one pair or instrument")
        if len(streams) > MAX_SUBSCRIPTIONS:
            raise _field_error("pairs", f"at most {MAX_SUBSCRIPTIONS} pairs and instruments per client")
        if not STREAM_ID.match(since):
            raise _field_error("since", "must be '$' (new entries only), '0' (everything kept) or a stream id")
        return cls(streams, since)


def _items(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t.strip()]


def _field_error(field: str, problem: str) -> InvalidInput:
    exc = InvalidInput(problem)
    exc.field = field  # type: ignore[attr-defined]  (read by the api's InvalidInput handler)
    return exc


def heartbeat_frame() -> str:
    return f'{{"channel":"heartbeat","ts_us":{now_us()}}}'


def error_frame(problem: str) -> str:
    return orjson.dumps({"channel": "error", "problem": problem}).decode()


class Relay:
    def __init__(self, r: aioredis.Redis, sub: Subscription, *, queue_size: int, block_ms: int, batch: int,
                 slow_grace_s: float) -> None:
        self.r = r
        self.sub = sub
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.block_ms = block_ms
        self.batch = batch
        self.slow_grace_s = slow_grace_s
        self._space = asyncio.Event()  # set by the sender each time it takes a frame
        self.positions: dict[str, str] = {}
        # the key -> channel/name prefix of each frame, JSON-escaped once
        self._heads = {key: '{"channel":"' + ch + '","key":' + orjson.dumps(name).decode() + ',"id":"'
                       for key, (ch, name) in sub.streams.items()}  # fmt: skip

    async def start_positions(self) -> None:
        """Resolve ``$`` to each stream's current last id now, so nothing published after connect is missed."""
        if self.sub.since != "$":
            self.positions = dict.fromkeys(self.sub.streams, self.sub.since)
            return
        pipe = self.r.pipeline(transaction=False)
        for key in self.sub.streams:
            pipe.xrevrange(key, count=1)
        for key, last in zip(self.sub.streams, await pipe.execute(), strict=True):
            self.positions[key] = _text(last[0][0]) if last else "0-0"

    async def _room(self) -> None:
        """Return once the queue has space; ``ClientTooSlow`` if it stays full for the grace period."""
        while self.queue.full():
            self._space.clear()
            if not self.queue.full():
                return
            try:
                await asyncio.wait_for(self._space.wait(), timeout=self.slow_grace_s)
            except TimeoutError:
                raise ClientTooSlow(
                    f"client read nothing of its {self.queue.maxsize} queued frames in {self.slow_grace_s:g} s"
                ) from None

    async def read_forever(self) -> None:
        per_stream = len(self.positions)
        while True:
            await self._room()
            free = self.queue.maxsize - self.queue.qsize()
            count = max(1, min(self.batch, free // per_stream))
            reply = await self.r.xread(self.positions, count=count, block=self.block_ms)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # the Redis client may absorb a cancellation that lands during a blocking read; honour it here
                raise asyncio.CancelledError
            for stream, entries in reply or ():
                key = _text(stream)
                head = self._heads[key]
                for entry_id, fields in entries:
                    eid = _text(entry_id)
                    data = fields.get(b"data") or fields.get("data")
                    if data is not None:
                        payload = data.decode() if isinstance(data, bytes) else data
                        await self._room()
                        self.queue.put_nowait(f'{head}{eid}","data":{payload}}}')
                    self.positions[key] = eid

    async def pump(self, send: Callable[[str], Awaitable[None]], heartbeat_s: float) -> None:
        while True:
            try:
                frame = await asyncio.wait_for(self.queue.get(), timeout=heartbeat_s)
                self._space.set()
            except TimeoutError:
                frame = heartbeat_frame()
            await send(frame)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def first_done(*aws: Awaitable[None]) -> BaseException | None:
    """Run until the first finishes; cancel the rest; return its exception (None if it returned)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(iter(done))
    return None if first.cancelled() else first.exception()
