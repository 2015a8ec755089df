"""One owned pair: read both legs through the pair's consumer group, process, commit, ack, publish.

Exactly-once results from at-least-once delivery:

1. Every processed batch commits bars, metrics, ticks and the pair checkpoint (engine state plus
   the last stream id folded into it, per leg) in one database transaction.
2. Only then are the folded entries XACKed and the batch's metrics published. Entries read but
   still queued in the merger stay pending, so a crash loses nothing.
3. On start the runner loads the checkpoint, claims the group's pending entries from any dead
   consumer, re-reads the pending list in order, acks entries already folded in (ids <= the
   checkpoint's), and re-publishes the checkpoint's metric outbox if the crash came between
   commit and publish.
"""

from __future__ import annotations

import logging
import time

import psycopg
import redis

from services.analytics.engine import EngineOutput, PairEngine
from services.analytics.merge import TwoLegMerger
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import PairStore, load_checkpoint, register_pair
from shared.errors import DecodeError
from shared.instruments import Pair
from shared.messages import STREAM_FIELD, Tick, from_fields
from shared.streams import DEADLETTER_MAXLEN, Keys

log = logging.getLogger(__name__)
PEL = "pel"  # cursor mode: re-reading our pending entries after a restart
NEW = ">"


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class PairRunner:
    def __init__(
        self,
        pair: Pair,
        *,
        r: redis.Redis,
        conn: psycopg.Connection,
        settings: AnalyticsSettings,
        window: int,
        timeframes: list[str],
        method: str,
        fence: int = 0,
    ) -> None:
        self.pair = pair
        self.r = r
        self.conn = conn
        self.settings = settings
        self.keys: Keys = settings.keys
        self.consumer = settings.instance
        self.group = Keys.analytics_group(pair.id)
        self.streams = (self.keys.ticks(pair.y.id), self.keys.ticks(pair.x.id))
        self.window, self.timeframes, self.method = window, timeframes, method
        self.fence = fence
        self.store = PairStore(conn, store_ticks=settings.store_ticks)
        self.merger = TwoLegMerger(int(settings.idle_grace_s * 1_000_000))
        self.engine: PairEngine
        self.last_ids: list[str | None] = [None, None]
        self._folded: list[tuple[int, int] | None] = [None, None]
        self._cursor: list[str] = [PEL, PEL]
        self._pel_from: list[str] = ["0", "0"]
        self._unacked: list[list[bytes]] = [[], []]
        self._drained = [False, False]
        self._newest_ts: int | None = None
        self._newest_wall = 0.0
        self.stats = {"entries": 0, "metrics": 0, "bars": 0, "deadletters": 0, "trimmed": 0}

    # --- start ----------------------------------------------------------------------------
    def start(self) -> None:
        register_pair(self.conn, self.pair, window=self.window, timeframes=self.timeframes, method=self.method)
        for stream in self.streams:
            try:
                self.r.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        checkpoint = load_checkpoint(self.conn, self.pair.id)
        if checkpoint is None:
            self.engine = PairEngine(self.pair, self.timeframes, self.window, self.method)
        else:
            self.engine = PairEngine.from_state(self.pair, checkpoint.state)
            self.last_ids = checkpoint.last_ids
            self._folded = [parse_id(i) if i else None for i in self.last_ids]
            self._republish(checkpoint.outbox)
        for stream in self.streams:
            self._claim_all(stream)
        log.info("pair started", extra={"pair": self.pair.id, "group": self.group, "resumed": checkpoint is not None})

    def _claim_all(self, stream: str) -> None:
        """Take over pending entries of other (dead) consumers of this pair's group."""
        start = "0-0"
        while True:
            # (redis-py drops the cursor from JUSTID replies, so take the full form.)
            reply = self.r.xautoclaim(stream, self.group, self.consumer, min_idle_time=0, start_id=start, count=1000)
            start = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if start == "0-0":
                return

    def _republish(self, outbox: list[bytes]) -> None:
        if not outbox:
            return
        key = self.keys.metrics(self.pair.id)
        last = self.r.xrevrange(key, count=1)
        start = 0
        if last:
            data = last[0][1].get(STREAM_FIELD)
            if data in outbox:
                start = outbox.index(data) + 1
        self._publish(outbox[start:])

    # --- processing -----------------------------------------------------------------------
    def poll(self, block_ms: int | None) -> int:
        """Read once (optionally blocking), process, commit, ack, publish. Returns entries read."""
        count = self.settings.read_count
        ids = {
            s: (self._pel_from[leg] if self._cursor[leg] == PEL else NEW) for leg, s in enumerate(self.streams)
        }
        use_block = block_ms if all(c == NEW for c in self._cursor) else None
        reply = self.r.xreadgroup(self.group, self.consumer, ids, count=count, block=use_block)
        got = {(k.decode() if isinstance(k, bytes) else k): entries for k, entries in (reply or [])}
        n_read = 0
        for leg, stream in enumerate(self.streams):
            entries = got.get(stream, [])
            n_read += len(entries)
            if self._cursor[leg] == PEL:
                if not entries:
                    self._cursor[leg] = NEW
                else:
                    self._pel_from[leg] = entries[-1][0].decode()
                self._drained[leg] = False
            else:
                self._drained[leg] = len(entries) < count
            for entry_id, fields in entries:
                self._accept(leg, stream, entry_id, fields)
        self.stats["entries"] += n_read
        self._process()
        return n_read

    def _accept(self, leg: int, stream: str, entry_id: bytes, fields: dict | None) -> None:
        if fields is None:  # trimmed away while pending: nothing left to process
            self.stats["trimmed"] += 1
            self._unacked[leg].append(entry_id)
            return
        folded = self._folded[leg]
        if folded is not None and parse_id(entry_id) <= folded:
            self._unacked[leg].append(entry_id)  # already in the checkpointed state
            return
        try:
            tick = from_fields(fields, Tick)
        except DecodeError as exc:
            self._deadletter(stream, entry_id, fields, str(exc))
            return
        self.merger.push(leg, entry_id.decode(), tick)
        if self._newest_ts is None or tick.ts_event_us > self._newest_ts:
            self._newest_ts = tick.ts_event_us
            self._newest_wall = time.time()

    def _clock_us(self) -> int | None:
        if self._newest_ts is None:
            return None
        return self._newest_ts + int((time.time() - self._newest_wall) * 1_000_000)

    def _process(self) -> None:
        out = EngineOutput()
        clock = self._clock_us()
        for leg, entry_id, tick in self.merger.release(tuple(self._drained), clock):
            self.engine.process(leg, tick, out)
            self.last_ids[leg] = entry_id
            self._unacked[leg].append(entry_id.encode())
        if clock is not None and all(self._drained) and self.merger.pending() == 0:
            self.engine.advance(clock - self.merger.idle_grace_us, out)
        if not out and not any(self._unacked):
            return
        outbox = self.store.write(
            out, pair_id=self.pair.id, state=self.engine.get_state(), last_ids=self.last_ids, fence=self.fence
        )
        self._folded = [parse_id(i) if i else None for i in self.last_ids]
        pipe = self.r.pipeline(transaction=False)
        for leg, stream in enumerate(self.streams):
            if self._unacked[leg]:
                pipe.xack(stream, self.group, *self._unacked[leg])
        pipe.execute()
        self._unacked = [[], []]
        self._publish(outbox)
        self.stats["metrics"] += len(out.metrics)
        self.stats["bars"] += len(out.bars)

    def _publish(self, encoded: list[bytes]) -> None:
        if not encoded:
            return
        key = self.keys.metrics(self.pair.id)
        pipe = self.r.pipeline(transaction=False)
        for data in encoded:
            pipe.xadd(key, {STREAM_FIELD: data}, maxlen=self.settings.metric_stream_maxlen, approximate=True)
        pipe.execute()

    def _deadletter(self, stream: str, entry_id: bytes, fields: dict, error: str) -> None:
        log.warning("dead-lettering entry", extra={"stream": stream, "id": entry_id.decode(), "error": error})
        raw = fields.get(STREAM_FIELD, b"") if isinstance(fields, dict) else b""
        self.r.xadd(
            self.keys.deadletter(self.group),
            {"stream": stream, "id": entry_id, "group": self.group, "error": error, "data": raw or b""},
            maxlen=DEADLETTER_MAXLEN,
            approximate=True,
        )
        self.r.xack(stream, self.group, entry_id)
        self.stats["deadletters"] += 1
