"""Smoke run of ``python -m bench.bench_stats --quick``: it completes and prints the full table.

No timing is asserted (speed is measured by the benchmark itself, never in unit tests); the
"same result" column compares our outputs with statsmodels' in that run, so it must say yes.
"""

from __future__ import annotations

from bench import bench_stats

EXPECTED_CASES = [
    "ADF fixed lag 10, n=1000",
    "ADF autolag AIC (maxlag 22), n=1000",
    "Engle-Granger (AIC lag), n=1000",
    "Johansen, 2 series, n=1000",
    "full metric update, 10 pairs, W=300",
]


def test_bench_stats_quick_prints_markdown_table(capsys) -> None:
    assert bench_stats.main(["--quick"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert lines[0] == "| " + " | ".join(bench_stats.HEADER) + " |"
    assert set(lines[1].replace("|", "")) == {"-"}
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert [r[0] for r in rows] == EXPECTED_CASES
    for row in rows[:4]:
        assert row[8] == "yes", row  # same statistic, lag and p-value as statsmodels
        assert row[5].endswith("x") and float(row[5][:-1]) > 0
    assert rows[4][2].endswith(("s", "ms"))
