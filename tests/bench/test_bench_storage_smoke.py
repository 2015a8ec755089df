"""Smoke run of ``bench.bench_storage --quick``: every write path and query runs and is tabled.

No timing is asserted (speed is measured by the benchmark itself); the row counts are checked
against what the data must hold.
"""

from __future__ import annotations

import pytest

from bench import _util, bench_storage


@pytest.fixture(autouse=True)
def _test_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import ADMIN_URL

    monkeypatch.setattr(_util, "ADMIN_URL", ADMIN_URL)


def _rows(out: str, header: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def test_quick_run_tables_every_write_path_and_query(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_storage.main(["--quick"]) == 0
    out = capsys.readouterr().out

    writes = _rows(out, "| table | write path |")
    assert {(r[0], r[1]) for r in writes} == {
        (t, p) for t in ("bars", "pair_metrics") for p in bench_storage.WRITERS
    }
    for table, _path, rows, insert_rate, update_rate, ratio in writes:
        assert int(rows.replace(",", "")) == (2_000 if table == "bars" else 1_000)
        assert float(insert_rate.replace(",", "")) > 0 and float(update_rate.replace(",", "")) > 0
        assert ratio.endswith("x") and float(ratio[:-1]) > 0

    queries = {(r[0], r[1]): int(r[2].replace(",", "")) for r in _rows(out, "| data | query |")}
    # Oracle (arithmetic): one hour of 1s bars is 3 600 rows and one day of 1m bars 1 440. Downsampling
    # uses buckets of span / 1 000 seconds (3.6 s and 86.4 s), both aligned with the data's start
    # (1723161600 s is a multiple of each) and wider than one bar, so every bucket is non-empty: 1 000.
    assert queries[("1 h of 1s bars", "full range")] == 3_600
    assert queries[("1 h of 1s bars", "downsampled to ~1 000")] == 1_000
    assert queries[("1 day(s) of 1m bars", "full range")] == 1_440
    assert queries[("1 day(s) of 1m bars", "downsampled to ~1 000")] == 1_000


def test_every_write_path_stores_the_same_rows(database_url: str, db) -> None:
    """The three paths are interchangeable: each leaves exactly the rows of the COPY path."""
    bars = bench_storage.make_bars(400)
    seen = []
    for writer in bench_storage.WRITERS.values():
        _util.truncate_all(database_url)
        db.execute("INSERT INTO pair_state (pair, fence) VALUES ('bench~pair', 0)")
        writer(db, "bars", bars)
        seen.append(db.execute("SELECT * FROM bars ORDER BY instrument, timeframe, ts").fetchall())
    assert len(seen[0]) == 400
    assert seen[1] == seen[0] and seen[2] == seen[0]
