"""Fixtures of the dashboard tests: the whole pipeline running live behind the gateway, the Dash app, Chromium.

The stack is module-scoped (one pipeline for all browser tests of a module) with its own Redis
namespace and emptied tables, cleaned up afterwards like the function-scoped fixtures do.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from services.dashboard.settings import DashboardSettings
from shared.config import CommonSettings
from shared.instruments import Pair
from tests.conftest import REDIS_URL
from tests.dashboard.stack import (
    TOKEN,
    GatewayServer,
    Stack,
    TickPacer,
    WorkerThread,
    alerts_process,
    analytics_settings,
    gateway_settings,
    live_spec,
    serve_wsgi,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
TABLES = ("alert_events", "alert_rules", "pair_metrics", "pair_state", "bars", "ticks", "pairs", "instruments")


def _empty_tables(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        names = [t for t in TABLES if t in present]
        if names:
            conn.execute(f"TRUNCATE {', '.join(names)} CASCADE")


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[Stack]:
    prefix = f"test:dash:{uuid.uuid4().hex[:8]}:"
    settings = CommonSettings(REDIS_URL=REDIS_URL, DATABASE_URL=database_url, PAIRS_KEY_PREFIX=prefix, LOG_JSON=False)
    client = redis.Redis.from_url(REDIS_URL)
    _empty_tables(database_url)
    spec = live_spec()
    pair = Pair.parse(f"{spec.y_instrument}~{spec.x_instrument}")
    pacer = TickPacer(client, settings, spec)
    worker = WorkerThread(analytics_settings(settings), pair)
    pacer.start()
    worker.start()
    gateway = GatewayServer(gateway_settings(settings))
    try:
        with alerts_process(settings):
            gateway.start()
            gateway_url = gateway.url
            from services.dashboard.app import create_app  # one Dash app per process (pages are global)

            dash_settings = DashboardSettings(gateway_url=gateway_url, token=TOKEN, refresh_ms=1000, LOG_JSON=False)
            app = create_app(dash_settings)
            with serve_wsgi(app.server) as dashboard_url:
                yield Stack(settings, pair, gateway, dashboard_url, pacer, worker)
            from services.dashboard import runtime

            runtime.close()
    finally:
        gateway.stop()
        pacer.stop_event.set()
        worker.stop_event.set()
        pacer.join(timeout=10)
        worker.join(timeout=20)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        _empty_tables(database_url)
    if worker.error is not None:
        raise worker.error


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dash-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1600,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
