"""The README's main command, for real: `pairs demo` on the simulated feed, every service as a process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.pipeline.helpers import REPO, worker_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_demo_runs_every_service_and_serves_warm_metrics(settings, db, redis_client):
    api_port, dash_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "demo", "--feed", "simulated", "--history", "400",
         "--duration", "90", "--api-port", str(api_port), "--dashboard-port", str(dash_port)],
        cwd=REPO, env=worker_env(settings, LOG_LEVEL="WARNING"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        snapshot = None
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/snapshot", timeout=2).json()
                rows = [r for r in body["data"] if r["timeframe"] == "1s" and r["zscore"] is not None]
                if rows:
                    snapshot = rows[0]
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        assert snapshot is not None, "no warm 1s metric served by the demo's gateway"
        assert snapshot["pair"] == "sim.ETHUSDT~sim.BTCUSDT"
        dash = httpx.get(f"http://127.0.0.1:{dash_port}/", timeout=5)
        assert dash.status_code == 200
        status = redis_client.get(settings.keys.feed_status("simulated"))
        assert status is not None and b'"simulated"' in status  # the feed is labelled for the gateway/UI
    finally:
        proc.send_signal(2)  # Ctrl-C
        out, _ = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "SIMULATED" in text and "Traceback" not in text, text[-3000:]
