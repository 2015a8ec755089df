"""Smoke run of ``python -m bench.bench_api --quick``: it completes, delivers every frame and prints both tables.

No timing is asserted (speed is measured by the benchmark itself, never in unit tests).
"""

from __future__ import annotations

from bench import bench_api


def test_bench_api_quick_prints_http_and_fanout_tables(capsys, key_prefix, monkeypatch):
    from tests.conftest import ADMIN_URL

    monkeypatch.setattr("bench._util.ADMIN_URL", ADMIN_URL)
    assert bench_api.main(["--quick", "--key-prefix", key_prefix]) == 0
    out = capsys.readouterr().out
    http = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in out.splitlines() if line.startswith("| ") and "req/s" not in line and "---" not in line}
    for name in ("health (baseline)", "snapshot", "bars, 1 000 points"):
        cells = http[name]
        assert int(cells[1].replace(",", "")) > 0 and cells[2] == "0", cells  # requests made, no errors
    fanout = [line for line in out.splitlines() if line.startswith("| 1 |") or line.startswith("| 10 |")]
    assert len(fanout) == 2
    for line in fanout:
        delivered, expected = (int(v.replace(",", "")) for v in line.split("|")[2].split("/"))
        assert delivered == expected > 0
