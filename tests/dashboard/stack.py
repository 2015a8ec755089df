"""The running pipeline behind the browser tests: paced generated ticks -> analytics worker -> gateway -> Dash.

Everything is real and local: Redis and PostgreSQL from the test fixtures, the analytics worker in
a thread, the gateway on uvicorn and the dashboard on werkzeug, each on a free loopback port.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis
import uvicorn
from werkzeug.serving import make_server

from services.analytics.settings import AnalyticsSettings
from services.analytics.worker import AnalyticsWorker
from services.api.app import create_app as create_gateway
from services.api.settings import ApiSettings
from shared.config import CommonSettings
from shared.instruments import Pair
from shared.messages import to_fields
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.timeutil import now_us

REPO = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-test-token-0123"
SIMULATED_FEED = "simulated"  # the feed name ingest's simulator reports under
HISTORY_S = 240  # seconds of ticks published at once before the live part starts
TIMEFRAMES = ["1s", "1m"]
WINDOW = 30


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class TickPacer(threading.Thread):
    """Publishes a generated cointegrated tape: the past at once, then each tick when wall time reaches it."""

    def __init__(self, client: redis.Redis, settings: CommonSettings, spec: CointegratedSpec) -> None:
        super().__init__(name="tick-pacer", daemon=True)
        self.client, self.keys = client, settings.keys
        self.ticks = generate_ticks(spec)
        self.published = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        status_at = 0.0
        while not self.stop_event.is_set() and self.published < len(self.ticks):
            now = now_us()
            pipe = self.client.pipeline(transaction=False)
            if time.monotonic() - status_at > 2:  # the feed status ingest's simulator writes, so /system shows it
                status_at = time.monotonic()
                body = {"feed": SIMULATED_FEED, "updated_us": now, "published": self.published,
                        "event_time_us": self.ticks[max(self.published - 1, 0)].ts_event_us}  # fmt: skip
                pipe.set(self.keys.feed_status(SIMULATED_FEED), orjson.dumps(body), ex=30)
            while self.published < len(self.ticks) and self.ticks[self.published].ts_event_us <= now:
                tick = self.ticks[self.published]
                pipe.xadd(self.keys.ticks(tick.instrument), to_fields(tick))
                self.published += 1
            pipe.execute()
            self.stop_event.wait(0.05)


class WorkerThread(threading.Thread):
    """The analytics worker's loop (``run`` installs signal handlers, which only the main thread may)."""

    def __init__(self, settings: AnalyticsSettings, pair: Pair) -> None:
        super().__init__(name="analytics-worker", daemon=True)
        self.worker = AnalyticsWorker(settings, pairs=[pair])
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.worker.run_once()
        except BaseException as exc:  # surfaced by the fixture, not swallowed
            self.error = exc
        finally:
            self.worker.close()


@contextmanager
def alerts_process(settings: CommonSettings) -> Iterator[subprocess.Popen]:
    """The real alerts worker (``python -m services.alerts``) on this stack's namespace; stopped with SIGTERM."""
    env = dict(os.environ, REDIS_URL=settings.redis_dsn, DATABASE_URL=settings.database_dsn,
               PAIRS_KEY_PREFIX=settings.key_prefix, LOG_JSON="false", LOG_LEVEL="WARNING",
               ALERTS_RULES_RELOAD_S="2", ALERTS_DISCOVER_INTERVAL_S="1")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "services.alerts", "--instance", "dash-test",
                             "--prometheus-port", "0"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class GatewayServer:
    """The gateway on uvicorn in a thread; ``stop`` and ``start`` again keep the same port (outage tests)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.port = free_socket_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._server = uvicorn.Server(uvicorn.Config(create_gateway(self.settings), log_level="warning",
                                                     lifespan="on", ws_ping_interval=None))  # fmt: skip
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
            self._sock.close()
            self._server = None


def free_socket_port() -> int:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def serve_gateway(settings: ApiSettings) -> Iterator[str]:
    server = GatewayServer(settings)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def serve_wsgi(app) -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dash-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@dataclass
class Stack:
    """Handles to the running pipeline (``gateway.stop()`` / ``start()`` simulate an outage)."""

    settings: CommonSettings
    pair: Pair
    gateway: GatewayServer
    dashboard_url: str
    pacer: TickPacer
    worker: WorkerThread

    @property
    def gateway_url(self) -> str:
        return self.gateway.url


def gateway_settings(settings: CommonSettings) -> ApiSettings:
    return ApiSettings(REDIS_URL=settings.redis_dsn, DATABASE_URL=settings.database_dsn,
                       PAIRS_KEY_PREFIX=settings.key_prefix, token=TOKEN, LOG_JSON=False)  # fmt: skip


def analytics_settings(settings: CommonSettings) -> AnalyticsSettings:
    return AnalyticsSettings(REDIS_URL=settings.redis_dsn, DATABASE_URL=settings.database_dsn,
                             PAIRS_KEY_PREFIX=settings.key_prefix, LOG_JSON=False, block_ms=50, window=WINDOW,
                             timeframes=TIMEFRAMES)  # fmt: skip


def live_spec(seed: int = 11) -> CointegratedSpec:
    """History of HISTORY_S seconds ending now, then 30 more minutes paced in real time."""
    return CointegratedSpec(start_us=now_us() - HISTORY_S * 1_000_000, duration_s=HISTORY_S + 1800, seed=seed)
