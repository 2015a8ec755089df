"""The alerts worker: metric streams -> rules -> events (db + ``alerts`` stream) -> deliveries.

Per batch: evaluate (pure); publish the events (once per dedupe key: a repeat returns the first
entry); write events and states in one transaction; queue new events for delivery; only then ack.
A crash at any point replays the batch; the persisted states skip metrics already folded in and the
events' unique key drops repeats. Events not yet published or delivered (crash, full delivery queue)
are picked up from the events table at start and periodically (the outbox scan).
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
import redis.asyncio as aioredis
from psycopg.rows import dict_row

from services.alerts import metrics, store
from services.alerts.consumer import Entry, MetricConsumer
from services.alerts.delivery import Deliverer, Job
from services.alerts.evaluator import Evaluator
from services.alerts.publisher import AlertPublisher
from services.alerts.settings import AlertsSettings
from services.alerts.tasks import heartbeat, listen, supervised, wait_or_stop
from shared.alerts.spec import build_channels
from shared.alerts.tree import RuleError
from shared.errors import DecodeError
from shared.messages import Metric, from_fields
from shared.redis_client import connect_async
from shared.streams import HEARTBEAT_TTL_SECONDS

log = logging.getLogger(__name__)


class AlertsWorker:
    """Consumes every ``metrics:*`` stream through the ``alerts`` group; ``run()`` until ``stop()``."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.evaluator = Evaluator()
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self.counts = {"metrics": 0, "evaluations": 0, "events": 0, "deadletters": 0, "failed_batches": 0}
        self.redis: aioredis.Redis | None = None
        self.conn: psycopg.AsyncConnection | None = None
        self.delivery_conn: psycopg.AsyncConnection | None = None

    def stop(self) -> None:
        self._stop.set()

    async def _connect(self) -> None:
        self.redis = connect_async(self.settings)
        timeout = int(self.settings.db_connect_timeout_s)
        self.conn = await psycopg.AsyncConnection.connect(
            self.settings.database_dsn, autocommit=True, row_factory=dict_row, connect_timeout=timeout
        )
        self.delivery_conn = await psycopg.AsyncConnection.connect(
            self.settings.database_dsn, autocommit=True, row_factory=dict_row, connect_timeout=timeout
        )

    async def run(self) -> None:
        try:
            await self._connect()
        except BaseException:
            await self._close()
            raise
        assert self.redis is not None and self.conn is not None and self.delivery_conn is not None
        self.consumer = MetricConsumer(self.redis, self.keys, self.settings.instance, self.settings.group_start_id)
        self.publisher = AlertPublisher(self.redis, self.keys)
        self.deliverer = Deliverer(self.settings, self.delivery_conn)
        background: list[asyncio.Task] = []
        try:
            await self._reload_rules()
            self.evaluator.set_states(await store.load_states(self.conn))
            self.deliverer.start()
            await self._resume_outbox()
            assert self.redis is not None
            ttl = max(HEARTBEAT_TTL_SECONDS, int(self.settings.heartbeat_interval_s * 3))
            background = [
                supervised(heartbeat(self.redis, self.keys.heartbeat("alerts", self.settings.instance), ttl,
                                     self.settings.heartbeat_interval_s, self._health, self._stop), "heartbeat"),
                supervised(listen(self.redis, self.keys.alert_rules_changed_channel, self._reload.set, self._stop),
                           "rule-notices"),
            ]
            await self.consumer.discover()
            await self._claim()
            await self._loop()
        finally:
            self._stop.set()  # also when leaving on an error: the background loops watch it
            if background:
                _, late = await asyncio.wait(background, timeout=5.0)
                for task in late:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
            await self.deliverer.close(self.settings.shutdown_grace_s)
            await self._close()
            log.info("alerts worker stopped: %s", self.counts)

    async def _loop(self) -> None:
        now = time.monotonic()
        next_discover = now + self.settings.discover_interval_s
        next_reload = now + self.settings.rules_reload_s
        next_claim = now + self.settings.claim_interval_s
        next_outbox = now + self.settings.outbox_interval_s
        retry_own = True  # first drain this consumer's own entries left unacked by a previous run
        isolate = False
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_discover:
                    await self.consumer.discover()
                    next_discover = now + self.settings.discover_interval_s
                if self._reload.is_set() or now >= next_reload:
                    self._reload.clear()
                    await self._reload_rules()
                    next_reload = now + self.settings.rules_reload_s
                if now >= next_claim:
                    await self._claim()
                    next_claim = now + self.settings.claim_interval_s
                if now >= next_outbox:
                    await self._resume_outbox()
                    next_outbox = now + self.settings.outbox_interval_s
                if not self.consumer.streams:
                    await wait_or_stop(self._stop, min(self.settings.block_ms / 1000, self.settings.discover_interval_s))
                    next_discover = 0.0
                    continue
                # After an unexpected error, redo our pending entries one at a time so that only the
                # entry that keeps failing reaches max_deliveries and the dead-letter stream.
                count = 1 if isolate else self.settings.read_count
                entries = await self.consumer.read(count, self.settings.block_ms, retry_own)
                await self._process(entries, redelivered=retry_own)
                retry_own = retry_own and bool(entries)  # drain our own pending entries first
                isolate = isolate and retry_own
            except (psycopg.Error, OSError, aioredis.RedisError) as exc:
                # Entries stay pending and are re-read (each re-read counts towards max_deliveries) once
                # Redis and the database answer again, so an outage alone never dead-letters metrics.
                self.counts["failed_batches"] += 1
                log.error("batch failed, will retry: %s", exc)
                retry_own = True
                await self._wait_until_healthy()
            except Exception:
                self.counts["failed_batches"] += 1
                log.exception("unexpected error in a batch; retrying its entries one by one")
                retry_own = isolate = True
                await wait_or_stop(self._stop, self.settings.retry_backoff_s)

    async def _claim(self) -> None:
        claimed = await self.consumer.claim_stale(self.settings.claim_min_idle_ms, self.settings.read_count)
        if claimed:
            log.info("claimed %d stale entries", len(claimed))
            await self._process(claimed)

    async def _process(self, entries: list[Entry], redelivered: bool = True) -> None:
        """Handle one batch: durable, published and queued for delivery before it is acked."""
        if not entries:
            return
        # Fresh ('>') entries were delivered once; only redeliveries need the group's counters.
        counts = await self.consumer.delivery_counts(entries) if redelivered else {}
        metrics_batch: list[Metric] = []
        good: list[Entry] = []
        for entry in entries:
            if counts.get((entry.stream, entry.id), 1) > self.settings.max_deliveries:
                await self._deadletter(entry, f"failed {self.settings.max_deliveries} deliveries")
                continue
            try:
                metric = from_fields(entry.fields, Metric)
            except DecodeError as exc:  # can never succeed: no point retrying
                await self._deadletter(entry, str(exc))
                continue
            metrics_batch.append(metric)
            good.append(entry)
        t_start = time.perf_counter()
        outcome = self.evaluator.evaluate(metrics_batch)
        t_eval = time.perf_counter()
        assert self.conn is not None
        # Publish first (at most once per dedupe key, so a repeat returns the existing entry), then one
        # transaction records the events with their stream ids and the states. If the commit fails the
        # batch is evaluated again and finds its events already on the stream.
        published = await self.publisher.publish([n.event for n in outcome.events])
        stream_ids = {event.dedupe_key: sid for event, sid, _ in published}
        async with self.conn.transaction():
            inserted = await store.write_batch(self.conn, outcome.events, outcome.states, stream_ids)
        new_events = [n for n in outcome.events if n.event.dedupe_key in inserted]
        self.evaluator.commit(outcome.states)
        t_write = time.perf_counter()
        deferred = 0
        for n in new_events:
            metrics.FIRINGS.labels(n.event.kind).inc()
            if n.channels and not self.deliverer.try_submit(Job(n.event, n.channels)):
                deferred += 1
        if deferred:
            log.warning("delivery queue full: %d events left for the outbox scan", deferred)
        await self.consumer.ack(good)
        log.debug("batch: %d metrics, %d evaluations, %d events, %d states; eval %.1f ms, write %.1f ms, ack %.1f ms",
                  len(metrics_batch), outcome.evaluations, len(new_events), len(outcome.states),
                  (t_eval - t_start) * 1e3, (t_write - t_eval) * 1e3, (time.perf_counter() - t_write) * 1e3)
        for reason, count in outcome.suppressed.items():
            metrics.SUPPRESSED.labels(reason).inc(count)
        metrics.METRICS_CONSUMED.inc(len(metrics_batch))
        metrics.EVALUATIONS.inc(outcome.evaluations)
        self.counts["metrics"] += len(metrics_batch)
        self.counts["evaluations"] += outcome.evaluations
        self.counts["events"] += len(new_events)

    async def _deadletter(self, entry: Entry, error: str) -> None:
        await self.consumer.deadletter(entry, error)
        metrics.DEADLETTERS.inc()
        self.counts["deadletters"] += 1

    async def _reload_rules(self) -> None:
        assert self.conn is not None
        rules = await store.load_rules(self.conn)
        self.evaluator.set_rules(rules)
        log.info("loaded %d alert rules (%d enabled)", len(rules), sum(r.enabled for r in rules))

    async def _resume_outbox(self) -> None:
        """Publish/deliver events a crash left behind (the publish is idempotent per dedupe key)."""
        assert self.conn is not None
        self.deliverer.finished.clear()  # anything finishing after this point may still read 'pending' below
        rows = await store.outbox(self.conn)
        to_publish = [event for event, needs_publish, _, _ in rows if needs_publish]
        published = await self.publisher.publish(to_publish)
        await store.mark_published(self.conn, [(event, sid) for event, sid, _ in published])
        for event, _, needs_delivery, raw_channels in rows:
            key = event.dedupe_key
            if not needs_delivery or key in self.deliverer.inflight or key in self.deliverer.finished:
                continue
            try:
                channels = build_channels(raw_channels or [])
            except RuleError as exc:
                channels = ()
                log.error("rule %s has invalid channels: %s", event.rule_id, exc)
            if channels:
                if not self.deliverer.try_submit(Job(event, channels)):
                    break  # queue full: the next outbox scan continues
            else:
                await store.set_delivery(self.conn, event, "none", 0, "rule deleted or has no channels")
        if to_publish:
            log.info("outbox: published %d events left unpublished", len(to_publish))

    def _health(self) -> dict:
        return {**self.counts, "streams": len(self.consumer.streams), "rules": len(self.evaluator.rules),
                "delivery_queue": self.deliverer.queue.qsize(), "delivered": self.deliverer.delivered,
                "delivery_failed": self.deliverer.failed, "ts": time.time()}

    async def _wait_until_healthy(self) -> None:
        delay = self.settings.retry_backoff_s
        while not self._stop.is_set():
            await wait_or_stop(self._stop, delay)
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = await psycopg.AsyncConnection.connect(
                        self.settings.database_dsn, autocommit=True, row_factory=dict_row,
                        connect_timeout=int(self.settings.db_connect_timeout_s),
                    )
                await self.conn.execute("SELECT 1")
                assert self.redis is not None
                await self.redis.ping()
                await self._resume_outbox()  # events committed before the failure still get published
                return
            except (psycopg.Error, OSError, aioredis.RedisError) as exc:
                log.warning("still unhealthy: %s", exc)
                delay = min(delay * 2 if delay else 1.0, 30.0)

    async def _close(self) -> None:
        if self.redis is not None:
            try:
                await self.redis.delete(self.keys.heartbeat("alerts", self.settings.instance))
            except aioredis.RedisError as exc:
                log.warning("could not remove the heartbeat: %s", exc)
            await self.redis.aclose()
        for conn in (self.conn, self.delivery_conn):
            if conn is not None:
                await conn.close()
