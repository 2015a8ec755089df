"""Smoke run of the alerts latency benchmark (``--quick``): it runs end to end and prints its table."""

from __future__ import annotations

import math

from bench import bench_alerts


def test_bench_alerts_quick_prints_a_latency_table(capsys, key_prefix, monkeypatch):
    from tests.conftest import ADMIN_URL

    monkeypatch.setattr(bench_alerts, "ADMIN_URL", ADMIN_URL)
    assert bench_alerts.main(["--quick", "--key-prefix", key_prefix]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| baseline") or line.startswith("| target")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        published, events, p50, p99 = int(cells[2].replace(",", "")), int(cells[3].replace(",", "")), \
            float(cells[5]), float(cells[6])
        assert published > 0 and events > 0  # z swings through ±3, so the ±2 rules must fire
        assert math.isfinite(p50) and 0 < p50 <= p99
    assert "ratio target/baseline" in out
