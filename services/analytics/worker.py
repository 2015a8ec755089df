"""The analytics worker process: acquires pair leases, polls its pairs' runners, heartbeats, stops cleanly.

Assignment is explicit (``--pairs``: this worker wants exactly those) or automatic (``--auto``:
every live worker takes its bounded-load rendezvous share of the enabled pairs in the database,
recomputed every ``rebalance_interval_s``). Either way a pair is processed only under its lease,
so two workers never own one pair at once; a pair whose lease is lost is dropped immediately.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import msgspec
import psycopg

from services.analytics import balance
from services.analytics.leases import LeaseManager
from services.analytics.rounds import commit_round
from services.analytics.runner import PairRunner
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import PairBatch, PairStore, register_pair
from services.analytics.wakeup import wake_cursors
from shared import redis_client
from shared.db.connection import connect
from shared.errors import LeaseLost
from shared.instruments import Pair
from shared.lifecycle import heartbeat_payload
from shared.observability import ServiceMetrics, group_lag, start_metrics_server
from shared.streams import HEARTBEAT_TTL_SECONDS

log = logging.getLogger(__name__)
SERVICE = "analytics"


class AnalyticsWorker:
    def __init__(self, settings: AnalyticsSettings, pairs: list[Pair] | None = None, auto: bool | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.instance = settings.instance
        self.r = redis_client.connect(settings)
        self.conn = connect(settings)
        self.conn.autocommit = True  # transactions are explicit (conn.transaction())
        self.explicit = list(pairs or [])
        self.auto = settings.auto if auto is None else auto
        self.leases = LeaseManager(self.r, self.keys, self.instance, settings.lease_ttl_s)
        self.runners: dict[str, PairRunner] = {}
        self.store = PairStore(self.conn, store_ticks=settings.store_ticks)
        self._woken_at: dict[str, str] = {}  # stream -> entry id that last woke the idle wait
        self.metrics = ServiceMetrics.create()
        self._metrics_server = (
            start_metrics_server(settings.metrics_port, self.metrics.registry) if settings.metrics_port is not None else None
        )
        self._stop = threading.Event()
        self._started_us = time.time_ns() // 1000
        self._last_heartbeat = 0.0
        self._last_renew = 0.0
        self._last_rebalance = 0.0
        self._pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.keys.pairs_changed_channel)
        for pair in self.explicit:
            register_pair(self.conn, pair, window=settings.window, timeframes=list(settings.timeframes),
                          method=settings.method)  # fmt: skip

    # --- ownership ------------------------------------------------------------------------
    def _pair_configs(self) -> dict[str, tuple]:
        rows = self.conn.execute('SELECT id, "window", timeframes, hedge_method, enabled FROM pairs').fetchall()
        return {r[0]: r[1:] for r in rows}

    def _desired(self, configs: dict[str, tuple]) -> set[str]:
        if not self.auto:
            return {p.id for p in self.explicit if configs.get(p.id, (0, 0, 0, False))[3]}
        enabled = sorted(pid for pid, cfg in configs.items() if cfg[3])
        # SCAN walks the whole keyspace: COUNT 1000 keeps it to a few round trips (the default 10 took
        # ~0.5 s with 20 000 keys, a stall of the worker loop every rebalance interval).
        members = [k.decode().rsplit(":", 1)[1]
                   for k in self.r.scan_iter(match=self.keys.member_pattern(SERVICE), count=1000)]
        return balance.my_share(enabled, members, self.instance)

    def _renew(self) -> None:
        self.r.set(self.keys.member(SERVICE, self.instance), b"1", px=int(self.settings.lease_ttl_s * 1000))
        for pair in self.leases.renew_all():
            log.warning("lease lost; dropping pair", extra={"pair": pair})
            self.runners.pop(pair, None)

    def rebalance(self, reload_config: bool = False) -> None:
        configs = self._pair_configs()
        desired = self._desired(configs)
        for pid in sorted(set(self.runners) - desired):
            log.info("releasing pair", extra={"pair": pid})
            self.runners.pop(pid)
            self.leases.release(pid)
        if reload_config:
            for pid in sorted(set(self.runners) & desired):
                runner = self.runners[pid]
                window, tfs, method, _ = configs[pid]
                if (runner.window, list(runner.timeframes), runner.method) != (window, list(tfs), method):
                    runner.window, runner.timeframes, runner.method = window, list(tfs), method
                    runner.start()  # reloads the checkpoint and reconfigures the engine
        for pid in sorted(desired - set(self.runners)):
            lease = self.leases.acquire(pid)
            if lease is None:
                continue  # still owned elsewhere (a rebalance in flight, or a live explicit owner)
            window, tfs, method, _ = configs[pid]
            runner = PairRunner(Pair.parse(pid), r=self.r, conn=self.conn, settings=self.settings,
                                window=window, timeframes=list(tfs), method=method, lease=lease,
                                metrics=self.metrics)  # fmt: skip
            try:
                runner.start()
            except LeaseLost as exc:
                log.warning("could not take pair: %s", exc, extra={"pair": pid})
                self.leases.release(pid)
                continue
            self.runners[pid] = runner
            log.info("owning pair", extra={"pair": pid, "fence": lease.token})

    def _renew_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_renew >= self.settings.lease_ttl_s / 3:
            self._last_renew = now
            self._renew()

    def _maintain(self) -> None:
        now = time.monotonic()
        self._renew_if_due()
        changed = False
        while (msg := self._pubsub.get_message()) is not None:
            changed = changed or msg.get("type") == "message"
        if changed or now - self._last_rebalance >= self.settings.rebalance_interval_s:
            self._last_rebalance = now
            self.rebalance(reload_config=changed)

    # --- loop -----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> int:
        """One round over every owned pair: their reads in one Redis round trip, their batches in
        one transaction, their acks and metrics in one more round trip. When nothing at all moved,
        wait for the next tick on any owned stream (or the next idle-grace deadline)."""
        self._maintain()
        moved = 0
        pending: list[tuple[PairRunner, PairBatch]] = []
        for pid, runner, reply, count in self._read_all():
            try:
                moved += runner.take(reply, count)
                if runner.careful:  # isolating a failure: its own transactions, one entry each
                    moved += runner.process_alone()
                    continue
                try:
                    released, batch = runner.fold()
                except LeaseLost:
                    raise
                except Exception as exc:  # noqa: BLE001 - a bug on this pair's data: retry, isolate
                    runner.failed(exc)
                    moved += 1
                    continue
                moved += released
                if batch is not None:
                    pending.append((runner, batch))
            except LeaseLost as exc:
                self._drop(pid, str(exc))
        # Renew before writing: a round can outlast the renew interval (a backlog on many pairs),
        # and a lapsed lease would stall its pair a whole TTL.
        self._renew_if_due()
        pending = [(r, b) for r, b in pending if r.pair.id in self.runners]
        for pid, why in commit_round(self.store, self.r, pending, self.metrics).items():
            self._drop(pid, why)
        if moved == 0 and self.runners and not self._stop.is_set():
            self._wait_for_ticks()
        elif not self.runners and not self._stop.is_set():
            time.sleep(self.settings.block_ms / 1000)
        self._heartbeat()
        return moved

    def _read_all(self) -> list[tuple[str, PairRunner, list | None, int]]:
        """Every owned pair's XREADGROUP, pipelined: (pair, runner, reply, count) per pair."""
        self._renew_if_due()
        requests = []
        pipe = self.r.pipeline(transaction=False)
        for pid, runner in list(self.runners.items()):
            try:
                ids, count = runner.read_request()
            except LeaseLost as exc:
                self._drop(pid, str(exc))
                continue
            pipe.xreadgroup(runner.group, runner.consumer, ids, count=count)
            requests.append((pid, runner, count))
        replies = pipe.execute() if requests else []
        return [(pid, runner, reply, count) for (pid, runner, count), reply in zip(requests, replies, strict=True)]

    def _drop(self, pid: str, why: str) -> None:
        log.warning("stopped writing for pair: %s", why, extra={"pair": pid})
        self.runners.pop(pid, None)
        self.leases.held.pop(pid, None)
        try:
            self.conn.rollback()
        except psycopg.Error:
            pass

    def _wait_for_ticks(self) -> None:
        """Block until an owned stream gets a new entry, a queued tick's idle grace ends, or block_ms."""
        timeout_s = self.settings.block_ms / 1000
        deadlines = [d for r in self.runners.values() if (d := r.next_deadline()) is not None]
        if deadlines:
            timeout_s = min(timeout_s, max(0.002, min(deadlines) - time.time()))
        cursors = wake_cursors(self.r, self.runners.values(), self._woken_at)
        reply = self.r.xread(cursors, count=1, block=max(1, round(timeout_s * 1000)))
        for stream, entries in reply or []:
            # Remember what woke us: a stream whose owners do not read that entry (a stale cursor)
            # must not wake the loop again and again.
            self._woken_at[stream.decode() if isinstance(stream, bytes) else stream] = entries[-1][0].decode()

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop())
        log.info("analytics worker running", extra={"instance": self.instance, "auto": self.auto})
        try:
            while not self._stop.is_set():
                self.run_once()
        finally:
            self.close()

    def run_until_idle(self, idle_rounds: int = 3, timeout_s: float = 120.0) -> None:
        """Process until several consecutive rounds read nothing (tests and batch replays).

        Rounds spent waiting for an explicit pair's lease (a dead owner's lease has not expired
        yet) do not count as idle.
        """
        quiet = 0
        deadline = time.monotonic() + timeout_s
        while quiet < idle_rounds and time.monotonic() < deadline:
            read = self.run_once()
            waiting = any(p.id not in self.runners for p in self.explicit)
            if waiting:
                self._last_rebalance = 0.0  # retry the lease at once
            quiet = quiet + 1 if read == 0 and not waiting else 0

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_heartbeat < self.settings.heartbeat_interval_s:
            return
        self._last_heartbeat = now
        pairs = {}
        for pid, runner in self.runners.items():
            lag = {}
            for stream in runner.streams:
                found = group_lag(self.r, stream, runner.group)
                if found is not None:
                    lag[stream] = {"lag": found[0], "pending": found[1]}
                    self.metrics.stream_lag.labels(stream, runner.group).set(found[0])
                    self.metrics.stream_pending.labels(stream, runner.group).set(found[1])
            pairs[pid] = {**runner.stats, "lag": lag, "fence": runner.fence}
        body = heartbeat_payload(SERVICE, self.instance, self._started_us, "running", {"auto": self.auto, "pairs": pairs})
        self.r.set(self.keys.heartbeat(SERVICE, self.instance), msgspec.json.encode(body), ex=HEARTBEAT_TTL_SECONDS)

    def close(self) -> None:
        try:
            for pid in list(self.runners):
                self.leases.release(pid)
            self.r.delete(self.keys.heartbeat(SERVICE, self.instance), self.keys.member(SERVICE, self.instance))
            self._pubsub.close()
            if self._metrics_server is not None:
                self._metrics_server.shutdown()
        finally:
            self.r.close()
            self.conn.close()
