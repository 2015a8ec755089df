"""Smoke run of bench/bench_ingest_live.py: it completes, prints its table, and every run is exact."""

from __future__ import annotations

import pytest

from bench import bench_ingest_live


@pytest.mark.timeout(300)
def test_bench_ingest_live_quick(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_ingest_live.main(["--quick"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| run")
            and not line.startswith("| ---")]
    names = [r.split("|")[1].strip() for r in rows]
    assert names[:3] == ["raw socket (count only)", "live ingest (packed)", "live ingest (redis-py)"]
    assert len(names) == 4 and names[3].startswith("live ingest (packed, paced")
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        if not cells[0].startswith("live ingest (packed, paced"):
            assert cells[1] == "8,000"  # 4 streams x 2 000 frames: every tick counted
        assert cells[-1] in ("-", "yes")  # the ingest runs found Redis == the server's ids
