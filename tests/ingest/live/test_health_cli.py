"""Feed health in Redis, `pairs ingest --check`, and `pairs ingest --live` end to end in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from services.ingest.__main__ import main as ingest_main
from services.ingest.live.settings import LiveSettings
from shared.config import REPO_ROOT
from tests.conftest import REDIS_URL
from tests.fakebinance import SPOT, Tape
from tests.ingest.live.conftest import live_settings, read_ticks, running, wait_until


def _check(instance: str) -> int:
    return ingest_main(["--check", "--instance", instance])


async def test_status_heartbeat_and_check_follow_stream_health(tapes: list[Tape], fake_factory, key_prefix, rclient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tape = next(t for t in tapes if t.venue == SPOT and t.kind == "trade")
    monkeypatch.setenv("PAIRS_KEY_PREFIX", key_prefix)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("LOG_JSON", "false")
    fb = fake_factory([tape])
    cfg = live_settings(key_prefix, fb, instruments=[f"binance-spot.{tape.symbol}"], instance="live-check",
                        check_max_silence_s=0.8, watchdog_silence_s=30.0)
    async with running(cfg) as ingest:
        fb.play(rate_per_s=100)
        await wait_until(lambda: rclient.get(cfg.keys.heartbeat("ingest", "live-check")) is not None, 5, "heartbeat")
        await asyncio.sleep(0.5)
        assert await asyncio.to_thread(_check, "live-check") == 0
        status = orjson.loads(rclient.get(cfg.keys.feed_status("live")))
        (stream,) = status["streams"]
        assert stream["connected"] and stream["messages"] > 0 and stream["stream"] == tape.stream
        assert stream["last_trade_id"] is not None and stream["ids_unfilled"] == 0
        assert status["connections"][0]["connected"] and status["problems"] == []
        assert 0 < rclient.ttl(cfg.keys.heartbeat("ingest", "live-check")) <= 15

        fb.silence(True)  # socket stays up; the stream goes quiet beyond check_max_silence_s
        await wait_until(lambda: bool(ingest.status_with_verdict()["problems"]), 5, "the silence to be noticed")
        await asyncio.sleep(cfg.status_interval_s * 2)
        assert await asyncio.to_thread(_check, "live-check") == 1
    assert await asyncio.to_thread(_check, "live-check") == 1  # stopped: heartbeat removed


def test_pairs_ingest_live_runs_publishes_and_stops_on_sigint(tapes: list[Tape], fake_factory, key_prefix,
                                                              rclient) -> None:
    tape = next(t for t in tapes if t.venue == SPOT and t.kind == "trade")
    fb = fake_factory([tape], preload=50)
    instrument = f"binance-spot.{tape.symbol}"
    env = {**os.environ, "PAIRS_KEY_PREFIX": key_prefix, "REDIS_URL": REDIS_URL, "LOG_JSON": "false",
           "INGEST_LIVE_SPOT_WS_BASE_URL": fb.spot_ws_url, "INGEST_LIVE_SPOT_REST_BASE_URL": fb.rest_url,
           "INGEST_LIVE_USDM_WS_BASE_URL": fb.usdm_ws_url, "INGEST_LIVE_USDM_REST_BASE_URL": fb.rest_url,
           "INGEST_LIVE_STATUS_INTERVAL_S": "0.2", "HEARTBEAT_INTERVAL_S": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest", "--live", "--instruments", instrument, "--stream-kind", "trade",
         "--seed-s", "3600", "--instance", "cli-live"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        key = f"{key_prefix}ticks:{instrument}"
        deadline = time.monotonic() + 20
        while rclient.xlen(key) < 50:  # the 50 pre-start trades arrive as the seed
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "seed never reached Redis"
            time.sleep(0.1)
        fb.play(rate_per_s=200)
        fb.wait_finished(10)
        last = tape.trade_id(len(tape.payloads) - 1)
        while read_ticks(rclient, live_cfg_for(key_prefix), instrument)[-1].trade_id != last:
            assert time.monotonic() < deadline + 10, "live ticks never completed"
            time.sleep(0.1)
        beat = orjson.loads(rclient.get(f"{key_prefix}heartbeat:ingest:cli-live"))
        assert beat["mode"] == "live" and beat["problems"] == []
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    summary = orjson.loads(out.strip().splitlines()[-1])
    assert summary["mode"] == "live" and summary["published"] == len(tape.payloads)
    ticks = read_ticks(rclient, live_cfg_for(key_prefix), instrument)
    assert [t.trade_id for t in ticks] == [tape.trade_id(i) for i in range(len(tape.payloads))]


def live_cfg_for(key_prefix: str) -> LiveSettings:
    return LiveSettings(REDIS_URL=REDIS_URL, PAIRS_KEY_PREFIX=key_prefix)
