"""``bench.run_all``: a quick run of one cheap module writes a complete report to the given path; a module
over its budget is killed with every process it started and reported, not waited for."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis

from bench import run_all


def test_quick_run_writes_report_with_machine_and_section(tmp_path: Path, service_endpoints,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(run_all, "REDIS_URL", service_endpoints.redis_url)
    monkeypatch.setattr(run_all, "ADMIN_URL", service_endpoints.admin_url)
    out = tmp_path / "bench.md"

    code = run_all.main(["--quick", "--only", "hedge", "--output", str(out)])

    assert code == 0
    text = out.read_text()
    assert "- Command: `python -m bench.run_all --quick --only hedge --output " in text
    assert re.search(r"- Date \(UTC\): \d{4}-\d\d-\d\d \d\d:\d\d", text)
    client = redis.Redis.from_url(service_endpoints.redis_url)
    redis_version = client.info("server")["redis_version"]
    client.close()
    with psycopg.connect(service_endpoints.admin_url) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    assert f"Redis {redis_version}" in text and f"PostgreSQL {pg_version}" in text
    assert f"- Machine: {os.cpu_count()} cores" in text
    assert "Load average (1/5/15 min) at start: " in text
    assert "| `bench.bench_hedge` | " in text and "| ok |" in text
    section = text.split("## Analytics update path", 1)[1]
    assert "rolling OLS hedge, W=300" in section  # the module's own table made it into its section
    assert "## Pipeline end to end" not in text  # --only ran nothing else


def test_module_over_budget_is_killed_with_its_process_group() -> None:
    slow = run_all.Module("hedge", "hedge", 1.0, "")
    started = time.monotonic()

    result = run_all.run_module(slow, quick=True, timeout_s=0.5)

    assert result.status == "timed out after 0 s"
    assert time.monotonic() - started < 60  # stopped, not run to completion
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    assert "bench.bench_hedge --quick" not in ps


def test_unknown_module_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown benchmark"):
        run_all.select("hedge,nope")


def test_every_listed_module_name_maps_to_a_bench_file() -> None:
    present = {p.stem.removeprefix("bench_") for p in Path(run_all.__file__).parent.glob("bench_*.py")}
    mine = {"pipeline", "storage"}
    assert mine <= present
    assert present <= {m.name for m in run_all.MODULES}, "a bench module exists that run_all does not run"
