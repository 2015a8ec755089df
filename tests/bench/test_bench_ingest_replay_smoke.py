"""Smoke run of bench/bench_ingest_replay.py --quick: it completes, checks Redis itself (each stream
holds exactly the ticks read, or the bench raises) and prints a complete markdown table."""

from __future__ import annotations

import pytest

from bench import bench_ingest_replay


def test_quick_run_prints_a_full_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_ingest_replay.main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:] if line.startswith("| ")]
    assert rows, lines
    by_set: dict[str, dict[str, int]] = {}
    for data_set, path, ticks, wall_s, rate, cpu_rate, *_ in rows:
        assert int(ticks.replace(",", "")) > 0 and float(wall_s) > 0
        assert float(rate.replace(",", "")) > 0 and float(cpu_rate.replace(",", "")) > 0
        by_set.setdefault(data_set, {})[path] = int(ticks.replace(",", ""))
    for data_set, paths in by_set.items():
        assert {"parse only (no Redis)", "packed @ max", "redis-py @ max"} <= paths.keys(), data_set
        assert len(set(paths.values())) == 1, paths  # every path read and published the same ticks
    assert any("@ 100x" in p for paths in by_set.values() for p in paths)
    assert any(line.startswith("Target:") for line in lines)
