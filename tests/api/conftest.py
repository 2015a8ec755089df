"""Gateway test fixtures: data replayed through the real pipeline, a TestClient, and a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.config import CommonSettings
from shared.instruments import Pair
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.testing.streams import publish_ticks
from tests.pipeline.helpers import analytics_settings, run_worker_until_idle

TOKEN = "test-token-0123456789"
AUTH = {"X-API-Token": TOKEN}
SPEC = CointegratedSpec(duration_s=240, seed=21)
PAIR = Pair.parse(f"{SPEC.y_instrument}~{SPEC.x_instrument}")
TIMEFRAMES = ["1s", "1m"]


def api_settings(settings: CommonSettings, **overrides) -> ApiSettings:
    values = dict(REDIS_URL=settings.redis_dsn, DATABASE_URL=settings.database_dsn,
                  PAIRS_KEY_PREFIX=settings.key_prefix, token=TOKEN, LOG_JSON=False)  # fmt: skip
    values.update(overrides)
    return ApiSettings(**values)


def replay_pipeline(settings: CommonSettings, redis_client, spec: CointegratedSpec = SPEC, window: int = 30) -> Pair:
    """Generated ticks -> tick streams -> analytics worker -> bars/metrics rows and metric streams."""
    publish_ticks(redis_client, settings.keys, generate_ticks(spec))
    pair = Pair.parse(f"{spec.y_instrument}~{spec.x_instrument}")
    run_worker_until_idle(analytics_settings(settings, window=window, timeframes=TIMEFRAMES), [pair])
    return pair


@pytest.fixture
def pipeline(settings, redis_client, db) -> Pair:
    return replay_pipeline(settings, redis_client)


@pytest.fixture
def client(settings, db) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(settings))) as c:
        yield c


@contextmanager
def serve(app: FastAPI, send_buffer: int | None = None) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server on a free loopback port; yields ``host:port``.

    ``send_buffer`` fixes SO_SNDBUF of accepted connections (inherited from the listening socket),
    so a client that stops reading fills the kernel buffers after kilobytes instead of megabytes.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws_ping_interval=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
