"""The analytics worker process: owns pairs, polls their runners round-robin, heartbeats, stops cleanly."""

from __future__ import annotations

import logging
import signal
import threading
import time

import msgspec

from services.analytics.runner import PairRunner
from services.analytics.settings import AnalyticsSettings
from shared import redis_client
from shared.db.connection import connect
from shared.instruments import Pair
from shared.streams import HEARTBEAT_TTL_SECONDS

log = logging.getLogger(__name__)


class AnalyticsWorker:
    def __init__(self, settings: AnalyticsSettings) -> None:
        self.settings = settings
        self.r = redis_client.connect(settings)
        self.conn = connect(settings)
        self.conn.autocommit = True  # transactions are explicit (conn.transaction())
        self.runners: list[PairRunner] = []
        self._stop = threading.Event()
        self._last_heartbeat = 0.0

    def add_pair(self, pair: Pair) -> PairRunner:
        runner = PairRunner(
            pair,
            r=self.r,
            conn=self.conn,
            settings=self.settings,
            window=self.settings.window,
            timeframes=list(self.settings.timeframes),
            method=self.settings.method,
        )
        runner.start()
        self.runners.append(runner)
        return runner

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> int:
        """One round over every owned pair; blocks briefly only when nothing at all was read."""
        total = 0
        for runner in self.runners:
            total += runner.poll(block_ms=None)
        if total == 0 and self.runners and not self._stop.is_set():
            # Idle: block on one pair (rotating) so an idle worker does not spin.
            runner = self.runners[int(time.monotonic() * 10) % len(self.runners)]
            total += runner.poll(block_ms=self.settings.block_ms)
        self._heartbeat()
        return total

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop())
        log.info("analytics worker running", extra={"pairs": [r.pair.id for r in self.runners]})
        try:
            while not self._stop.is_set():
                self.run_once()
        finally:
            self.close()

    def run_until_idle(self, idle_rounds: int = 3) -> None:
        """Process until several consecutive rounds read nothing (tests and batch replays)."""
        quiet = 0
        while quiet < idle_rounds:
            quiet = quiet + 1 if self.run_once() == 0 else 0

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_heartbeat < self.settings.heartbeat_interval_s:
            return
        self._last_heartbeat = now
        body = {
            "instance": self.settings.instance,
            "ts": now,
            "pairs": {r.pair.id: r.stats for r in self.runners},
        }
        self.r.set(
            self.settings.keys.heartbeat("analytics", self.settings.instance),
            msgspec.json.encode(body),
            ex=HEARTBEAT_TTL_SECONDS,
        )

    def close(self) -> None:
        try:
            self.r.delete(self.settings.keys.heartbeat("analytics", self.settings.instance))
        finally:
            self.r.close()
            self.conn.close()
