"""``pairs screen``: rank every pair of a set of instruments by cointegration and mean reversion.

Examples::

    pairs screen --from-db --instruments binance-usdm.BTCUSDT,binance-usdm.ETHUSDT,binance-usdm.SOLUSDT \\
        --timeframe 1m --from 2025-06-07 --to 2025-06-16
    pairs screen --files ETH=eth.csv.gz BTC=btc.csv.gz SOL=sol.csv --json --workers 2

Exit codes: 0 success, 2 bad input (arguments, files, too little data), 1 database unreachable.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import pandas as pd

from services.research.common import csv_of, database, print_json, run_command, utc_datetime
from shared.errors import InvalidInput
from shared.instruments import Instrument
from shared.research.prices import (
    align_closes,
    clip_range,
    instrument_names_from_files,
    load_bars_db,
    read_price_file,
)
from shared.research.screen import MIN_BARS, ScreenCriteria, ScreenResult, screen
from shared.timeframes import BAR_TIMEFRAMES

PROG = "pairs screen"
SHOWN = ["rank", "y", "x", "eg_pvalue", "johansen_rank", "half_life_bars", "hurst", "crossings_per_year", "corr", "beta"]


def _parser() -> argparse.ArgumentParser:
    d = ScreenCriteria()
    p = argparse.ArgumentParser(prog=PROG, description="Screen a universe of instruments for cointegrated pairs.")
    p.add_argument("--instruments", type=csv_of(str), help="comma-separated instrument ids (database) or names (files)")
    p.add_argument("--timeframe", default="1m", choices=BAR_TIMEFRAMES)
    p.add_argument("--from", dest="start", type=utc_datetime, help="first bar time (inclusive, UTC)")
    p.add_argument("--to", dest="end", type=utc_datetime, help="end time (exclusive, UTC)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-db", action="store_true", help="read bars from the database 'bars' table")
    src.add_argument("--files", nargs="+", metavar="[NAME=]FILE", help="one price file per instrument")
    p.add_argument("--database-url", help="default: DATABASE_URL")
    f = p.add_argument_group("filters")
    f.add_argument("--max-pvalue", type=float, default=d.max_pvalue)
    f.add_argument("--max-hurst", type=float, default=d.max_hurst)
    f.add_argument("--min-half-life", type=float, default=d.min_half_life_bars, help="bars")
    f.add_argument("--max-half-life-frac", type=float, default=d.max_half_life_frac, help="fraction of the sample")
    f.add_argument("--min-crossings", type=float, default=d.min_crossings_per_year, help="zero crossings per year")
    o = p.add_argument_group("run and output")
    o.add_argument("--workers", type=int, default=1)
    o.add_argument("--progress", action="store_true")
    o.add_argument("--all", action="store_true", help="list every pair, not only those passing the filters")
    o.add_argument("--json", action="store_true")
    return p


def _closes(args: argparse.Namespace) -> pd.DataFrame:
    if args.from_db:
        if not args.instruments or len(args.instruments) < 2:
            raise InvalidInput("--from-db needs --instruments with at least 2 ids")
        ids = [Instrument.parse(i).id for i in args.instruments]
        with database(args.database_url) as conn:
            frames = {i: load_bars_db(conn, i, args.timeframe, args.start, args.end) for i in ids}
    else:
        named = instrument_names_from_files(args.files)
        if args.instruments:
            if len(args.instruments) != len(named):
                raise InvalidInput(f"--instruments names {len(args.instruments)} instruments but {len(named)} files are given")
            named = [(n, p) for n, (_, p) in zip(args.instruments, named, strict=True)]
        if len({n for n, _ in named}) != len(named):
            raise InvalidInput("instrument names must be distinct (use NAME=FILE)")
        frames = {n: clip_range(read_price_file(p), args.start, args.end) for n, p in named}
    return align_closes(frames, min_bars=MIN_BARS)


def _print_text(result: ScreenResult, show_all: bool) -> None:
    rows = result.table if show_all else result.ranked
    print(f"{len(result.ranked)} of {len(result.table)} pairs pass the filters "
          f"({result.n_bars} {result.timeframe} bars)")
    if not rows.empty:
        print(rows[SHOWN].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _body(args: argparse.Namespace) -> int:
    criteria = ScreenCriteria(
        max_pvalue=args.max_pvalue, max_hurst=args.max_hurst, min_half_life_bars=args.min_half_life,
        max_half_life_frac=args.max_half_life_frac, min_crossings_per_year=args.min_crossings,
    )
    closes = _closes(args)
    result = screen(closes, args.timeframe, criteria, workers=args.workers, progress=args.progress)
    if args.json:
        print_json({
            "timeframe": result.timeframe,
            "bars": result.n_bars,
            "criteria": asdict(criteria),
            "ranked": result.ranked.to_dict(orient="records"),
            "pairs": result.table.to_dict(orient="records") if args.all else None,
            "corr_matrix": result.corr_matrix.to_dict(),
            "coint_matrix": result.coint_matrix.to_dict(),
        })
    else:
        _print_text(result, args.all)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return run_command(PROG, lambda: _body(args))
