"""One owned pair: read both legs through the pair's consumer group, process, commit, ack, publish.

Exactly-once results from at-least-once delivery:

1. Every processed batch commits bars, metrics, ticks and the pair checkpoint (engine state plus
   the last stream id folded into it, per leg) in one database transaction: the worker's round
   transaction shared with its other pairs' batches (see rounds.py), or the pair's own.
2. Only then are the folded entries XACKed and the batch's metrics published. Entries read but
   still queued in the merger stay pending, so a crash loses nothing.
3. On start the runner records its lease's fencing token in the database (older owners' writes
   are refused from then on), loads the checkpoint, claims the group's pending entries from any
   dead consumer, re-reads the pending list in order, acks entries already folded in (ids <= the
   checkpoint's), and re-publishes the checkpoint's metric outbox. Metric stream ids come from the
   engine, so a re-published metric that already made it is refused by Redis, never duplicated.
4. Bad input never stops a pair: an entry that cannot be decoded or validated goes to the
   dead-letter stream at once; an entry whose processing keeps failing (a bug, a database
   refusal) is retried one entry at a time and dead-lettered after ``max_deliveries`` failures.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import psycopg
import redis

from services.analytics.engine import EngineOutput, PairEngine
from services.analytics.entries import (
    check_publish_results,
    claim_all,
    ensure_group,
    forget_idle_consumers,
    invalid_reason,
    parse_id,
)
from services.analytics.leases import Lease
from services.analytics.merge import TwoLegMerger
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import Outbox, PairBatch, PairStore, claim_fence, load_checkpoint, register_pair
from shared.errors import DecodeError, LeaseLost
from shared.instruments import Pair
from shared.messages import STREAM_FIELD, Tick, from_fields
from shared.observability import ServiceMetrics
from shared.streams import DEADLETTER_MAXLEN, Keys

log = logging.getLogger(__name__)
PEL = "pel"  # cursor mode: re-reading our pending entries after a restart
NEW = ">"


def merge_grace_s(pair: Pair, settings: AnalyticsSettings) -> float:
    """How long the merge waits for a drained leg: legs on one venue share an ingest connection,
    which delivers them in trade-time order; legs on two venues come through two connections."""
    return settings.same_venue_grace_s if pair.y.venue == pair.x.venue else settings.idle_grace_s


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
        lease: Lease | None = None,
        metrics: ServiceMetrics | None = None,
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
        self.lease = lease
        self.metrics = metrics or ServiceMetrics.create()
        self.fence = lease.token if lease else 0
        self.store = PairStore(conn, store_ticks=settings.store_ticks)
        self.merger = TwoLegMerger(int(merge_grace_s(pair, settings) * 1_000_000))
        self.engine: PairEngine
        self.last_ids: list[str | None] = [None, None]
        self._folded: list[tuple[int, int] | None] = [None, None]
        self._cursor: list[str] = [PEL, PEL]
        self._pel_from: list[str] = ["0", "0"]
        self._unacked: list[list[bytes]] = [[], []]
        self._drained = [False, False]
        self.top_ids: list[str | None] = [None, None]  # newest entry read per leg (the idle wait's cursor)
        self._newest_ts: int | None = None
        self._newest_wall = 0.0
        self._careful = False  # after a failure: one entry per batch, to find the culprit
        self._careful_until: list[tuple[int, int] | None] = [None, None]  # newest ids of the failed batch
        self._batch: list[tuple[int, str]] = []  # (leg, entry id) released in the current batch
        self._failures: Counter[str] = Counter()
        self.stats = {"entries": 0, "metrics": 0, "bars": 0, "deadletters": 0, "trimmed": 0, "retries": 0}

    # --- start ----------------------------------------------------------------------------
    def start(self) -> None:
        register_pair(self.conn, self.pair, window=self.window, timeframes=self.timeframes, method=self.method)
        for stream in self.streams:
            ensure_group(self.r, stream, self.group)
        if self.lease is not None:
            claim_fence(self.conn, self.pair.id, self.fence)
        self._load()
        for stream in self.streams:
            claim_all(self.r, stream, self.group, self.consumer)
            forget_idle_consumers(self.r, stream, self.group, self.consumer)

    def _load(self) -> None:
        """(Re)build the engine from the checkpoint and re-read the pending list from its start."""
        self.merger = TwoLegMerger(self.merger.idle_grace_us)
        self.last_ids = [None, None]
        self._folded = [None, None]
        self._cursor = [PEL, PEL]
        self._pel_from = ["0", "0"]
        self._unacked = [[], []]
        self._newest_ts = None
        checkpoint = load_checkpoint(self.conn, self.pair.id)
        engine = None
        if checkpoint is not None:
            try:
                engine = PairEngine.from_state(self.pair, checkpoint.state)
            except (KeyError, TypeError, ValueError) as exc:
                # Written by another build (an upgrade): start the pair's rolling state afresh from
                # the next entries, but keep the folded ids so nothing already counted is counted again.
                log.warning("discarding an incompatible checkpoint: %s", exc, extra={"pair": self.pair.id})
        if engine is None:
            self.engine = PairEngine(self.pair, self.timeframes, self.window, self.method)
            if checkpoint is not None:  # discarded above: skip what it had counted, continue the stream ids
                self.last_ids = checkpoint.last_ids
                self._folded = [parse_id(i) if i else None for i in self.last_ids]
                top = self.r.xrevrange(self.keys.metrics(self.pair.id), count=1)
                if top:
                    self.engine.stream_ms, self.engine.stream_seq = parse_id(top[0][0])
        else:
            self.engine = engine
            if self.engine.reconfigure(self.timeframes, self.window, self.method):
                log.info("pair configuration changed", extra={"pair": self.pair.id})
            self.last_ids = checkpoint.last_ids
            self._folded = [parse_id(i) if i else None for i in self.last_ids]
            self._publish(checkpoint.outbox)  # whatever already made it is refused by id
        log.info("pair loaded", extra={"pair": self.pair.id, "group": self.group, "resumed": checkpoint is not None})

    # --- processing -----------------------------------------------------------------------
    @property
    def careful(self) -> bool:
        return self._careful

    def check_lease(self, doing: str) -> None:
        if self.lease is not None and time.monotonic() > self.lease.valid_until:
            raise LeaseLost(f"{self.pair.id}: lease not renewed in time; not {doing}")

    def read_request(self) -> tuple[dict[str, str], int]:
        """({stream: id}, count) of this pair's next XREADGROUP (the worker pipelines them)."""
        # A worker that was frozen must not even read: entries it took from the group would sit
        # in its own pending list, out of reach of the pair's new owner.
        self.check_lease("reading")
        count = 1 if self._careful else self.settings.read_count
        ids = {s: (self._pel_from[leg] if self._cursor[leg] == PEL else NEW) for leg, s in enumerate(self.streams)}
        return ids, count

    def take(self, reply: list | None, count: int) -> int:
        """Feed an XREADGROUP reply into the merger; returns the entries read."""
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
                if entries:
                    self.top_ids[leg] = entries[-1][0].decode()
            for entry_id, fields in entries:
                self._accept(leg, stream, entry_id, fields)
        self.stats["entries"] += n_read
        return n_read

    def process_alone(self) -> int:
        """Fold and commit in this pair's own transactions (one per tick in careful mode, so a
        failure is attributable to exactly one entry); returns the ticks released."""
        released = 0
        try:
            while True:
                n, batch = self.fold(limit=1 if self._careful else None)
                released += n
                if batch is not None:
                    started = time.perf_counter()
                    self.store.write(batch)
                    self.metrics.db_write_latency.labels("batch").observe(time.perf_counter() - started)
                    self.committed(batch)
                if not (self._careful and n):
                    return released
        except LeaseLost:
            raise
        except Exception as exc:  # a bug or a refusing database: retry, isolate, dead-letter
            self.failed(exc)
            return released + 1  # not idle: the pending entries are re-read next

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
        reason = invalid_reason(tick)
        if reason is None and tick.instrument != self.pair.legs[leg].id:
            reason = f"instrument {tick.instrument!r} on the stream of {self.pair.legs[leg].id!r}"
        if reason is not None:
            self._deadletter(stream, entry_id, fields, f"invalid tick: {reason}")
            return
        self.merger.push(leg, entry_id.decode(), tick)
        if self._newest_ts is None or tick.ts_event_us > self._newest_ts:
            self._newest_ts = tick.ts_event_us
            self._newest_wall = time.time()

    def _clock_us(self) -> int | None:
        if self._newest_ts is None:
            return None
        return self._newest_ts + int((time.time() - self._newest_wall) * 1_000_000)

    def next_deadline(self) -> float | None:
        """Wall time at which the idle grace would release a queued tick or close an open bar
        with no new entries arriving; None if nothing waits on the clock."""
        if self._newest_ts is None or not all(self._drained):
            return None
        due_us = self.merger.head_ts() if self.merger.pending() else self.engine.next_close_us()
        if due_us is None:
            return None
        return self._newest_wall + (due_us + self.merger.idle_grace_us - self._newest_ts) / 1_000_000

    def fold(self, limit: int | None = None) -> tuple[int, PairBatch | None]:
        """Release what the merge allows into the engine; returns (ticks released, the batch to
        commit, or None if nothing needs writing)."""
        out = EngineOutput()
        clock = self._clock_us()
        self._batch = []
        for leg, entry_id, tick in self.merger.release(tuple(self._drained), clock):
            self._batch.append((leg, entry_id))
            self.engine.process(leg, tick, out)
            self.last_ids[leg] = entry_id
            self._unacked[leg].append(entry_id.encode())
            if limit is not None and len(self._batch) >= limit:
                break
        if clock is not None and all(self._drained) and self.merger.pending() == 0:
            self.engine.advance(clock - self.merger.idle_grace_us, out)
        if not out and not any(self._unacked):
            return len(self._batch), None
        self.check_lease("writing")
        state = self.engine.get_state()
        return len(self._batch), PairBatch(self.pair.id, self.fence, out, state, list(self.last_ids))

    def committed(self, batch: PairBatch) -> None:
        """After the batch's commit: acknowledge its entries, publish its metrics."""
        pipe = self.r.pipeline(transaction=False)
        self.queue_after_commit(batch, pipe)
        check_publish_results(pipe.execute(raise_on_error=False))

    def queue_after_commit(self, batch: PairBatch, pipe: redis.client.Pipeline) -> None:
        """Book the committed batch and queue its XACKs and metric XADDs on ``pipe`` (the worker
        sends every pair's in one round trip, then checks them with ``check_publish_results``)."""
        out = batch.out
        for bar in out.bars:
            self.metrics.bars_written.labels(bar.timeframe).inc()
        for metric in out.metrics:
            self.metrics.metrics_written.labels(metric.timeframe).inc()
        if self._careful and all(
            until is None or (last is not None and parse_id(last) >= until)
            for last, until in zip(self.last_ids, self._careful_until, strict=True)
        ):
            self._careful = False
        self._folded = [parse_id(i) if i else None for i in self.last_ids]
        for leg, stream in enumerate(self.streams):
            if self._unacked[leg]:
                pipe.xack(stream, self.group, *self._unacked[leg])
        self._unacked = [[], []]
        self._queue_publish(batch.outbox, pipe)
        self.stats["metrics"] += len(out.metrics)
        self.stats["bars"] += len(out.bars)

    def _publish(self, outbox: Outbox) -> None:
        pipe = self.r.pipeline(transaction=False)
        self._queue_publish(outbox, pipe)
        check_publish_results(pipe.execute(raise_on_error=False))

    def _queue_publish(self, outbox: Outbox, pipe: redis.client.Pipeline) -> None:
        key = self.keys.metrics(self.pair.id)
        for entry_id, data in outbox:
            pipe.xadd(key, {STREAM_FIELD: data}, id=entry_id, maxlen=self.settings.metric_stream_maxlen, approximate=True)

    def failed(self, exc: Exception) -> None:
        """Roll back to the checkpoint; dead-letter an entry that failed ``max_deliveries`` times."""
        self.stats["retries"] += 1
        if self._careful:  # one entry per batch: the failure is this entry's
            for _leg, entry_id in self._batch:
                self._failures[entry_id] += 1
        else:
            for leg in (0, 1):
                ids = [parse_id(i) for lg, i in self._batch if lg == leg]
                self._careful_until[leg] = max(ids, default=None)
        culprits = [(leg, i) for leg, i in self._batch if self._failures[i] >= self.settings.max_deliveries]
        log.warning(
            "batch failed; rolling back to the checkpoint",
            extra={"pair": self.pair.id, "error": repr(exc), "entries": [i for _, i in self._batch]},
        )
        try:
            self.conn.rollback()
        except psycopg.Error:
            pass
        for leg, entry_id in culprits:
            stream = self.streams[leg]
            found = self.r.xrange(stream, min=entry_id, max=entry_id)
            fields = dict(found[0][1]) if found else {}
            self._deadletter(stream, entry_id.encode(), fields, f"failed {self._failures[entry_id]} times: {exc!r}")
            del self._failures[entry_id]
        self._careful = True
        self._load()

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
        self.metrics.deadlettered.labels(self.group).inc()
