"""Smoke run of ``python -m bench.bench_hedge --quick``: it completes and prints the full table.

No timing is asserted here (speed is measured by the benchmark itself, never in unit tests).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

EXPECTED_CASES = [
    "rolling OLS hedge, W=300",
    "rolling z-score, W=300",
    "rolling correlation, W=300",
    "Kalman hedge",
    "Theil-Sen, n=200",
    "Huber, n=200",
]


def test_bench_hedge_quick_prints_markdown_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_hedge", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| case | ours | ours time | reference | reference time | speed-up |")
    assert set(lines[1].replace("|", "")) == {"-"}
    rows = lines[2:]
    assert len(rows) == 7
    for case in EXPECTED_CASES:
        assert any(r.startswith(f"| {case} |") for r in rows), case
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 8
        ratio = float(cells[5].rstrip("x").replace(",", ""))
        assert ratio > 0.0
        assert re.fullmatch(r"[\d.]+ (us|ms|s)( per (update|fit))?", cells[2]), cells[2]
