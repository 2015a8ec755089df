"""The consumer-group side: discover metric streams, read, claim stale entries, ack, dead-letter."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.streams import ALERTS_GROUP, DEADLETTER_MAXLEN, Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    stream: str
    id: str
    fields: dict[bytes, bytes]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class MetricConsumer:
    def __init__(self, client: aioredis.Redis, keys: Keys, consumer: str, start_id: str = "0") -> None:
        self.client = client
        self.keys = keys
        self.consumer = consumer
        self.start_id = start_id
        self.streams: set[str] = set()

    async def discover(self) -> list[str]:
        """SCAN for metric streams not seen yet and join the group on each; returns the new ones."""
        new = []
        async for raw in self.client.scan_iter(match=self.keys.metrics_pattern(), count=1000, _type="stream"):
            key = _s(raw)
            if key in self.streams:
                continue
            try:
                await self.client.xgroup_create(key, ALERTS_GROUP, id=self.start_id, mkstream=False)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self.streams.add(key)
            new.append(key)
        if new:
            log.info("consuming %d new metric streams (%d in all)", len(new), len(self.streams))
        return new

    async def read(self, count: int, block_ms: int, own_pending: bool = False) -> list[Entry]:
        """New entries (``>``), or this consumer's own unacked ones (``0``) after a restart or failure."""
        if not self.streams:
            return []
        start = "0" if own_pending else ">"
        try:
            reply = await self.client.xreadgroup(
                ALERTS_GROUP,
                self.consumer,
                {s: start for s in sorted(self.streams)},
                count=count,
                block=None if own_pending else block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._repair()  # a stream was deleted (pair removed) or its group destroyed
            return []
        entries, trimmed = self._entries(reply)
        if trimmed:  # pending entries trimmed from the stream: nothing left to process, drop them from the PEL
            await self.ack(trimmed)
        return entries

    async def _repair(self) -> None:
        """Forget deleted streams and rejoin streams whose group disappeared."""
        for stream in sorted(self.streams):
            if not await self.client.exists(stream):
                self.streams.discard(stream)
                log.info("metric stream %s is gone; no longer consuming it", stream)
                continue
            try:
                await self.client.xgroup_create(stream, ALERTS_GROUP, id=self.start_id, mkstream=False)
                log.warning("group %s was missing on %s; recreated from %s", ALERTS_GROUP, stream, self.start_id)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    @staticmethod
    def _entries(reply) -> tuple[list[Entry], list[Entry]]:
        """(entries to process, pending entries whose data was trimmed away)."""
        out, trimmed = [], []
        items = reply.items() if isinstance(reply, dict) else (reply or [])
        for stream, messages in items:
            for entry_id, fields in messages:
                entry = Entry(_s(stream), _s(entry_id), fields or {})
                (out if fields is not None else trimmed).append(entry)
        return out, trimmed

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Entry]:
        """XAUTOCLAIM every stream's entries idle for ``min_idle_ms`` (a dead consumer's work)."""
        out: list[Entry] = []
        for stream in sorted(self.streams):
            start = "0-0"
            while True:
                reply = await self.client.xautoclaim(
                    stream, ALERTS_GROUP, self.consumer, min_idle_ms, start_id=start, count=count
                )
                next_id, messages = reply[0], reply[1]
                out.extend(Entry(stream, _s(i), f) for i, f in messages if f is not None)
                start = _s(next_id)
                if start == "0-0" or len(out) >= count:
                    break
        return out

    async def delivery_counts(self, entries: list[Entry]) -> dict[tuple[str, str], int]:
        """How many times each entry has been delivered (Redis keeps the counter in the group)."""
        out: dict[tuple[str, str], int] = {}
        by_stream: dict[str, list[str]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        for stream, ids in by_stream.items():
            rows = await self.client.xpending_range(stream, ALERTS_GROUP, min=min(ids, key=_id_key),
                                                    max=max(ids, key=_id_key), count=len(ids) + 1000)
            wanted = set(ids)
            for row in rows:
                mid = _s(row["message_id"])
                if mid in wanted:
                    out[(stream, mid)] = int(row["times_delivered"])
        return out

    async def ack(self, entries: list[Entry]) -> None:
        if not entries:
            return
        by_stream: dict[str, list[str]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, ALERTS_GROUP, *ids)
        await pipe.execute()

    async def deadletter(self, entry: Entry, error: str) -> None:
        """Move one entry to ``deadletter:alerts`` with the error, then ack it."""
        fields: dict[bytes | str, bytes | str] = {
            "stream": entry.stream,
            "entry_id": entry.id,
            "group": ALERTS_GROUP,
            "error": error[:2000],
        }
        for name, value in entry.fields.items():
            fields[f"orig:{_s(name)}"] = value
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.keys.deadletter(ALERTS_GROUP), fields, maxlen=DEADLETTER_MAXLEN, approximate=True)
        pipe.xack(entry.stream, ALERTS_GROUP, entry.id)
        await pipe.execute()
        log.error("dead-lettered %s %s: %s", entry.stream, entry.id, error)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
