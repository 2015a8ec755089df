"""ServiceRunner and check_heartbeat against the real Redis, including real signals in a child process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import redis

from shared.config import CommonSettings
from shared.errors import ConfigError
from shared.lifecycle import (
    CHECK_OK,
    CHECK_UNHEALTHY,
    CHECK_UNREACHABLE,
    ServiceRunner,
    check_heartbeat,
)
from shared.streams import HEARTBEAT_TTL_SECONDS
from shared.timeutil import now_us
from tests.conftest import REDIS_URL


def _settings(key_prefix: str, redis_url: str = REDIS_URL, **extra: object) -> CommonSettings:
    values = {"HEARTBEAT_INTERVAL_S": 0.05, "SHUTDOWN_GRACE_S": 0.3, **extra}
    return CommonSettings(REDIS_URL=redis_url, PAIRS_KEY_PREFIX=key_prefix, LOG_JSON=False, **values)


@pytest.fixture
def client(key_prefix: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(REDIS_URL)
    yield c
    c.close()


def test_heartbeat_carries_counters_and_is_removed_on_clean_stop(key_prefix: str, client: redis.Redis) -> None:
    settings = _settings(key_prefix)
    counters = {"processed": 0}
    runner = ServiceRunner("analytics", settings, instance="w1", stats=lambda: dict(counters))
    seen: list[dict] = []

    async def work(stop: asyncio.Event) -> None:
        for _ in range(5):
            counters["processed"] += 1
            await asyncio.sleep(0.06)  # longer than the beat interval: a fresh beat lands each loop
        seen.append(json.loads(client.get(runner.key)))
        assert check_heartbeat(settings, "analytics", "w1") == CHECK_OK
        assert check_heartbeat(settings, "analytics", "other") == CHECK_UNHEALTHY

    assert runner.run_sync(work) == 0
    beat = seen[0]
    assert beat["service"] == "analytics" and beat["instance"] == "w1" and beat["state"] == "running"
    assert beat["processed"] >= 4
    assert client.exists(runner.key) == 0
    assert check_heartbeat(settings, "analytics", "w1") == CHECK_UNHEALTHY


def test_cooperative_stop_finishes_in_flight_work(key_prefix: str) -> None:
    runner = ServiceRunner("alerts", _settings(key_prefix), instance="a1")
    finished: list[str] = []

    async def work(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().call_later(0.05, runner.request_stop, "test")
        await stop.wait()
        await asyncio.sleep(0.05)  # the in-flight batch, well inside the 0.3 s grace period
        finished.append("flushed")

    assert runner.run_sync(work) == 0
    assert finished == ["flushed"]


def test_work_ignoring_stop_is_cancelled_after_grace_period(key_prefix: str, client: redis.Redis) -> None:
    runner = ServiceRunner("ingest", _settings(key_prefix, SHUTDOWN_GRACE_S=0.1), instance="i1")
    events: list[str] = []

    async def work(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().call_later(0.05, runner.request_stop, "test")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    assert runner.run_sync(work) == 0
    assert events == ["cancelled"]
    assert client.exists(runner.key) == 0


def test_second_stop_request_cancels_without_waiting_for_grace(key_prefix: str) -> None:
    runner = ServiceRunner("ingest", _settings(key_prefix, SHUTDOWN_GRACE_S=60), instance="i2")
    events: list[str] = []

    async def work(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, runner.request_stop, "first")
        loop.call_later(0.10, runner.request_stop, "second")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    started = time.monotonic()
    assert runner.run_sync(work) == 0
    assert events == ["cancelled"]
    assert time.monotonic() - started < 30, "the 60 s grace period was not cut short"


def test_failing_work_exits_1_and_clears_heartbeat(key_prefix: str, client: redis.Redis) -> None:
    runner = ServiceRunner("analytics", _settings(key_prefix), instance="bad")

    async def work(stop: asyncio.Event) -> None:
        raise RuntimeError("boom")

    assert runner.run_sync(work) == 1
    assert client.exists(runner.key) == 0


def test_unhealthy_or_stale_heartbeat_fails_the_check(key_prefix: str, client: redis.Redis) -> None:
    settings = _settings(key_prefix)
    key = settings.keys.heartbeat("analytics", "x")
    client.set(key, json.dumps({"instance": "x", "ts_us": now_us(), "healthy": False, "reason": "db down"}), ex=15)
    assert check_heartbeat(settings, "analytics", "x") == CHECK_UNHEALTHY
    stale = now_us() - (HEARTBEAT_TTL_SECONDS + 5) * 1_000_000
    client.set(key, json.dumps({"instance": "x", "ts_us": stale}), ex=15)
    assert check_heartbeat(settings, "analytics", "x") == CHECK_UNHEALTHY
    client.set(key, "not json", ex=15)
    assert check_heartbeat(settings, "analytics", "x") == CHECK_UNHEALTHY
    client.set(key, json.dumps({"instance": "x", "ts_us": now_us()}), ex=15)
    assert check_heartbeat(settings, "analytics", "x") == CHECK_OK


def test_default_instance_is_found_by_hostname(key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAIRS_INSTANCE", raising=False)
    settings = _settings(key_prefix)
    runner = ServiceRunner("analytics", settings)
    assert runner.instance == f"{socket.gethostname()}-{os.getpid()}"
    results: list[int] = []

    async def work(stop: asyncio.Event) -> None:
        results.append(await asyncio.to_thread(check_heartbeat, settings, "analytics"))

    assert runner.run_sync(work) == 0
    assert results == [CHECK_OK]


def test_unreachable_redis_gives_exit_2(key_prefix: str) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = _settings(key_prefix, redis_url=f"redis://127.0.0.1:{port}/0", REDIS_TIMEOUT_S=0.5)
    assert check_heartbeat(settings, "analytics", "w") == CHECK_UNREACHABLE

    async def work(stop: asyncio.Event) -> None:
        raise AssertionError("must not start without Redis")

    assert ServiceRunner("analytics", settings, instance="w").run_sync(work) == 1


def test_interval_not_below_ttl_is_a_config_error(key_prefix: str) -> None:
    with pytest.raises(ConfigError, match="HEARTBEAT_INTERVAL_S"):
        ServiceRunner("analytics", _settings(key_prefix, HEARTBEAT_INTERVAL_S=HEARTBEAT_TTL_SECONDS))


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from shared.config import CommonSettings
    from shared.lifecycle import ServiceRunner
    settings = CommonSettings(REDIS_URL=sys.argv[1], PAIRS_KEY_PREFIX=sys.argv[2], HEARTBEAT_INTERVAL_S=0.1,
                              SHUTDOWN_GRACE_S=5, LOG_JSON=False)
    async def work(stop):
        print("ready", flush=True)
        await stop.wait()
        print("flushed", flush=True)
    sys.exit(ServiceRunner("analytics", settings, instance="child").run_sync(work))
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_real_signal_stops_gracefully(key_prefix: str, client: redis.Redis, sig: signal.Signals) -> None:
    settings = _settings(key_prefix)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, REDIS_URL, key_prefix], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while check_heartbeat(settings, "analytics", "child") != CHECK_OK:
            assert time.monotonic() < deadline, "child never wrote a heartbeat"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.strip() == "flushed"
    assert client.exists(settings.keys.heartbeat("analytics", "child")) == 0
