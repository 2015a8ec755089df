"""``pairs ingest`` end to end: replay from the command line, --check against the heartbeat of a
running process, and SIGTERM flushing everything before exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

from services.ingest.__main__ import main
from shared.config import CommonSettings
from shared.streams import Keys

from .conftest import stream_ticks, write_lines

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ingest_env(settings: CommonSettings, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"PAIRS_KEY_PREFIX": key_prefix, "REDIS_URL": settings.redis_dsn, "LOG_JSON": "false",
           "INGEST_FEED_STATUS_TTL_S": "30"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **env}


def test_replay_command(ingest_env: dict, tmp_path: Path, redis_client: redis.Redis, keys: Keys,
                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    lines = [f"{i},{100 + i}.5,0.1,10.05,{1_723_161_600_000 + i},True,True" for i in range(1, 51)]
    lines.insert(10, "oops,1,2")
    path = write_lines(tmp_path / "XRPUSDT-trades-2024-08-09.csv", lines)
    assert main(["--replay", str(path), "--venue", "binance-spot", "--no-progress", "--instance", "cli-test"]) == 0
    out = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ticks = stream_ticks(redis_client, keys, "binance-spot.XRPUSDT")
    assert [t.trade_id for t in ticks] == list(range(1, 51)) and [t.price for t in ticks][:2] == [101.5, 102.5]
    assert out["published"] == 50 and out["summary"]["malformed"] == 1
    assert out["summary"]["malformed_examples"][0]["line_no"] == 11
    assert redis_client.exists(keys.heartbeat("ingest", "cli-test")) == 0  # removed on a clean stop
    assert orjson.loads(redis_client.get(keys.feed_status("replay")))["state"] == "finished"


def test_bad_arguments_exit_2(ingest_env: dict, tmp_path: Path) -> None:
    assert main(["--replay", str(tmp_path / "missing.csv"), "--no-progress"]) == 2
    path = write_lines(tmp_path / "XRPUSDT-trades-2024-08-09.csv", ["1,1.5,0.1,0.15,1723161600000,True,True"])
    assert main(["--replay", str(path), "--speed", "warp", "--no-progress", "--venue", "binance-spot"]) == 2
    with pytest.raises(SystemExit):
        main(["--replay", str(path), "--simulate"])  # modes are exclusive


def test_check_follows_the_heartbeat_and_sigterm_flushes(ingest_env: dict, redis_client: redis.Redis,
                                                         keys: Keys) -> None:  # fmt: skip
    instance = "sim-under-test"
    assert main(["--check", "--instance", instance]) == 1  # nothing running yet
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest", "--simulate", "--speed", "1", "--instance", instance],
        cwd=REPO, env={**ingest_env, "HEARTBEAT_INTERVAL_S": "0.5"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not redis_client.exists(keys.heartbeat("ingest", instance)):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no heartbeat within 20 s"
            time.sleep(0.1)
        assert main(["--check", "--instance", instance]) == 0
        while not redis_client.exists(keys.ticks("sim.BTCUSDT")):  # the first loop is being generated
            assert time.monotonic() < deadline, "no ticks within 20 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr.decode()
    out = orjson.loads(stdout.decode().strip().splitlines()[-1])
    on_streams = sum(len(stream_ticks(redis_client, keys, f"sim.{s}")) for s in ("BTCUSDT", "ETHUSDT"))
    assert out["published"] == on_streams > 0 and out["queued"] == 0
    assert main(["--check", "--instance", instance]) == 1  # the heartbeat was deleted on the way out
    status = orjson.loads(redis_client.get(keys.feed_status("simulated")))
    assert status["mode"] == "simulated" and status["state"] == "stopped"
