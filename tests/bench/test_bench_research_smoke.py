"""Smoke run of ``bench.bench_research --quick``: every case runs and the markdown table is printed."""

from __future__ import annotations

from bench.bench_research import main


def test_quick_run_prints_every_case(capsys) -> None:
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| case |")
    rows = [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines[2:]]
    cases = [r[0] for r in rows]
    assert any(c.startswith("screen 6 instruments") for c in cases)
    assert any(c.startswith("backtest, OLS") for c in cases)
    assert any(c.startswith("walk-forward grid, 2 processes") for c in cases)
    assert len(rows) == 8 and all(float(r[2]) > 0 for r in rows)
