"""``pairs backtest``: files and database bars in, report or JSON out, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from services.cli import main as pairs
from shared.research.backtest import run_backtest
from shared.research.execution import CostModel, ExecutionParams
from shared.research.pair_bars import PairBars
from shared.research.signals import SignalParams
from shared.testing.universe import UniverseSpec, generate_universe
from shared.timeutil import us_to_datetime

SPEC = UniverseSpec(n_instruments=2, n_pairs=1, n_bars=1_500, seed=21)


@pytest.fixture(scope="module")
def universe():
    return generate_universe(SPEC)


@pytest.fixture
def files(tmp_path: Path, universe) -> tuple[Path, Path]:
    p = universe.planted[0]
    out = []
    for name in (p.y, p.x):
        path = tmp_path / f"{name}.csv"
        universe.bars(name).rename_axis("timestamp").to_csv(path)
        out.append(path)
    return out[0], out[1]


def _expected(universe) -> tuple:
    p = universe.planted[0]
    bars = PairBars.from_frames(universe.bars(p.y), universe.bars(p.x))
    return run_backtest(
        bars, SignalParams(window=100, entry=2.0, exit=0.5, stop=4.0),
        ExecutionParams(), CostModel(taker_fee_bps=4.0, slippage_bps=1.0),
    )


def test_json_output_matches_the_library(files, universe, capsys) -> None:
    y, x = files
    rc = pairs(["backtest", "--y", str(y), "--x", str(x), "--window", "100", "--entry", "2", "--exit", "0.5",
                "--stop", "4", "--method", "ols", "--sizing", "beta", "--fee-bps", "4", "--slippage-bps", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    ref = _expected(universe)
    assert out["stats"]["trades"] == ref.stats.trades > 0
    assert out["stats"]["net_pnl"] == pytest.approx(ref.stats.net_pnl, rel=1e-12)
    assert [t["entry_bar"] for t in out["trades"]] == [t.entry_bar for t in ref.trades]
    assert out["signal"]["window"] == 100


def test_text_report_and_walk_forward(files, capsys) -> None:
    y, x = files
    assert pairs(["backtest", "--y", str(y), "--x", str(x), "--window", "100"]) == 0
    assert "| sharpe |" in capsys.readouterr().out
    rc = pairs(["backtest", "--y", str(y), "--x", str(x), "--walk-forward", "600,300", "--grid-window", "50,100",
                "--grid-entry", "1.5,2", "--grid-exit", "0.5", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "walk_forward" and len(out["folds"]) == 3
    assert len(out["table"]) == 3 * 4
    assert set(out["heatmap_test_sharpe"]) == {"50", "100"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--x", "b.csv"], "give --y FILE and --x FILE"),
        (["--y", "missing.csv", "--x", "missing.csv"], "price file not found"),
        (["--entry", "1", "--exit", "2"], "0 <= exit < entry < stop"),
        (["--from-db"], "--from-db needs --pair"),
        (["--walk-forward", "5"], "TRAIN,TEST"),
    ],
)
def test_bad_input_exits_2_with_a_message(files, argv, message, capsys) -> None:
    y, x = files
    if argv[:1] in (["--entry"], ["--walk-forward"]):
        argv = ["--y", str(y), "--x", str(x), *argv]
    assert pairs(["backtest", *argv]) == 2
    assert message in capsys.readouterr().err


def test_argparse_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        pairs(["backtest", "--window", "abc"])
    assert exc.value.code == 2


def test_from_db(db: psycopg.Connection, database_url: str, universe, capsys) -> None:
    p = universe.planted[0]
    rows = []
    for name in (p.y, p.x):
        b = universe.bars(name)
        for ts, o, h, lo, c in zip(b.index, b["open"], b["high"], b["low"], b["close"], strict=True):
            rows.append((name, "1m", us_to_datetime(int(ts)), o, h, lo, c, 1.0, 0.5, 1))
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO bars (instrument, timeframe, ts, open, high, low, close, volume, buy_volume, trades)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    rc = pairs(["backtest", "--from-db", "--pair", f"{p.y}~{p.x}", "--database-url", database_url,
                "--window", "100", "--slippage-bps", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    ref = _expected(universe)
    assert out["stats"]["net_pnl"] == pytest.approx(ref.stats.net_pnl, rel=1e-12)
    # A time range that leaves too few bars is bad input.
    start = us_to_datetime(int(universe.ts_us[-1])).isoformat()
    rc = pairs(["backtest", "--from-db", "--pair", f"{p.y}~{p.x}", "--database-url", database_url, "--from", start])
    assert rc == 2
    assert "bars of" in capsys.readouterr().err


def test_unreachable_database_exits_1(capsys) -> None:
    rc = pairs(["backtest", "--from-db", "--pair", "sim.AAUSDT~sim.BBUSDT",
                "--database-url", "postgresql://postgres@127.0.0.1:1/none"])
    assert rc == 1
    assert "database error" in capsys.readouterr().err
