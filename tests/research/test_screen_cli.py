"""``pairs screen``: files or database bars in, ranked pairs out, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from services.cli import main as pairs
from shared.testing.universe import UniverseSpec, generate_universe
from shared.timeutil import us_to_datetime

SPEC = UniverseSpec(n_instruments=5, n_pairs=1, n_bars=1_200, seed=8)


@pytest.fixture(scope="module")
def universe():
    return generate_universe(SPEC)


def _write_files(tmp_path: Path, universe) -> list[str]:
    out = []
    for name in universe.names:
        path = tmp_path / f"{name}.csv"
        universe.bars(name).rename_axis("timestamp").to_csv(path)
        out.append(f"{name}={path}")
    return out


def test_files_json(tmp_path: Path, universe, capsys) -> None:
    rc = pairs(["screen", "--files", *_write_files(tmp_path, universe), "--json", "--all"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    p = universe.planted[0]
    assert {out["ranked"][0]["y"], out["ranked"][0]["x"]} == {p.y, p.x}
    assert len(out["pairs"]) == 10 and out["bars"] == 1_200
    assert set(out["corr_matrix"]) == set(universe.names)
    assert out["coint_matrix"][p.x][p.y] < 0.05  # column x, row y: p-value of y on x


def test_text_output_and_filters(tmp_path: Path, universe, capsys) -> None:
    files = _write_files(tmp_path, universe)
    assert pairs(["screen", "--files", *files]) == 0
    assert "pairs pass the filters" in capsys.readouterr().out
    assert pairs(["screen", "--files", *files, "--max-pvalue", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ranked"] == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--files", "a=missing.csv", "b=missing2.csv"], "price file not found"),
        (["--from-db", "--instruments", "sim.AAUSDT"], "at least 2 ids"),
        (["--files", "x.csv", "--instruments", "A,B"], "names 2 instruments but 1 files"),
    ],
)
def test_bad_input_exits_2(extra, message, capsys) -> None:
    assert pairs(["screen", *extra]) == 2
    assert message in capsys.readouterr().err


def test_no_source_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as exc:
        pairs(["screen", "--instruments", "A,B"])
    assert exc.value.code == 2


def test_from_db_with_time_range(db: psycopg.Connection, database_url: str, universe, capsys) -> None:
    rows = []
    for name in universe.names:
        b = universe.bars(name)
        for ts, o, h, lo, c in zip(b.index, b["open"], b["high"], b["low"], b["close"], strict=True):
            rows.append((name, "1m", us_to_datetime(int(ts)), o, h, lo, c, 1.0, 0.5, 1))
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO bars (instrument, timeframe, ts, open, high, low, close, volume, buy_volume, trades)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    start = us_to_datetime(int(universe.ts_us[100])).isoformat()
    end = us_to_datetime(int(universe.ts_us[1100])).isoformat()
    rc = pairs(["screen", "--from-db", "--database-url", database_url, "--instruments", ",".join(universe.names),
                "--from", start, "--to", end, "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bars"] == 1_000
    p = universe.planted[0]
    assert {out["ranked"][0]["y"], out["ranked"][0]["x"]} == {p.y, p.x}
