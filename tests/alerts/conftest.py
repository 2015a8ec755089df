"""Fixtures for the alerts tests: a real local HTTP receiver, rule rows, metric publishing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import psycopg
import pytest
import redis

from services.alerts.settings import AlertsSettings
from shared.alerts.spec import build_channels, build_spec
from shared.config import CommonSettings
from shared.messages import Metric, to_fields


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((self.path, dict(self.headers.items()), body))
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for _, _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def alerts_settings(settings: CommonSettings) -> AlertsSettings:
    return AlertsSettings(
        REDIS_URL=settings.redis_dsn,
        DATABASE_URL=settings.database_dsn,
        PAIRS_KEY_PREFIX=settings.key_prefix,
        LOG_JSON=False,
        HEARTBEAT_INTERVAL_S=0.2,
        instance="test-alerts",
        block_ms=50,
        discover_interval_s=0.1,
        rules_reload_s=60,
        claim_interval_s=60,
        webhook_backoff_s=0.01,
        webhook_max_attempts=3,
        webhook_secret="global-secret",
        prometheus_port=0,
        shutdown_grace_s=5,
    )


def alerts_env(s: AlertsSettings) -> dict[str, str]:
    """The same settings as environment variables, for a subprocess worker."""
    return {
        "REDIS_URL": s.redis_dsn,
        "DATABASE_URL": s.database_dsn,
        "PAIRS_KEY_PREFIX": s.key_prefix,
        "LOG_JSON": "false",
        "HEARTBEAT_INTERVAL_S": "0.2",
        "ALERTS_INSTANCE": s.instance,
        "ALERTS_BLOCK_MS": str(s.block_ms),
        "ALERTS_DISCOVER_INTERVAL_S": str(s.discover_interval_s),
        "ALERTS_WEBHOOK_BACKOFF_S": str(s.webhook_backoff_s),
        "ALERTS_WEBHOOK_MAX_ATTEMPTS": str(s.webhook_max_attempts),
        "ALERTS_WEBHOOK_SECRET": "global-secret",
        "ALERTS_PROMETHEUS_PORT": "0",
        "ALERTS_CLAIM_MIN_IDLE_MS": "0",
    }


@pytest.fixture
def insert_rule(db: psycopg.Connection) -> Callable[..., int]:
    def insert(kind: str, spec: dict, *, name: str = "rule", pair: str | None = None, timeframe: str = "1s",
               channels: list | None = None, cooldown_s: float = 0, pending_n: int = 1, enabled: bool = True) -> int:
        built = build_spec(kind, spec)
        build_channels(channels or [])
        row = db.execute(
            """INSERT INTO alert_rules (name, pair, timeframe, kind, expression, spec, enabled, cooldown_s,
                                        pending_n, channels)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (name, pair, timeframe, kind, built.text(), orjson.dumps(built.to_json()).decode(), enabled,
             cooldown_s, pending_n, orjson.dumps(channels or []).decode()),
        ).fetchone()
        return int(row[0])

    return insert


def publish(client: redis.Redis, settings: CommonSettings, metrics: list[Metric]) -> None:
    pipe = client.pipeline(transaction=False)
    for m in metrics:
        pipe.xadd(settings.keys.metrics(m.pair), to_fields(m))
    pipe.execute()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class WorkerThread:
    """An in-process AlertsWorker on its own event loop in a thread (tests stay synchronous)."""

    def __init__(self, settings: AlertsSettings) -> None:
        import asyncio

        from services.alerts.service import AlertsWorker

        self.worker = AlertsWorker(settings)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.worker.run())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            self.loop.close()

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.worker.stop)
            self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def start_worker(alerts_settings: AlertsSettings) -> Iterator[Callable[..., WorkerThread]]:
    started: list[WorkerThread] = []

    def start(**overrides) -> WorkerThread:
        settings = alerts_settings.model_copy(update=overrides)
        w = WorkerThread(settings).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
