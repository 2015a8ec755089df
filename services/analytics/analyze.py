"""``pairs analyze Y_FILE X_FILE``: offline analysis of two price files, printed as JSON.

Each file is read (any layout :mod:`services.analytics.price_files` knows), resampled to the
timeframe (last price per UTC bucket), the two legs aligned on their common range, and
:func:`shared.analytics.report.analyze_pair` run on the closes. Exit codes: 0 success, 2 bad
arguments or unreadable/unsuitable input (one-line message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys

from services.analytics.price_files import aligned_bars, read_prices
from shared.analytics.report import METHODS, analyze_pair
from shared.errors import DecodeError, InvalidInput
from shared.timeframes import BAR_TIMEFRAMES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairs analyze",
        description="Analyse a pair from two price files (Binance trades/aggTrades/klines dumps or "
        "timestamp,price CSV, gzip ok) and print the report as JSON. The hedge regression is y on x.",
    )
    parser.add_argument("y_file", help="price file of the dependent leg (y)")
    parser.add_argument("x_file", help="price file of the hedge leg (x)")
    parser.add_argument("--timeframe", default="1m", choices=BAR_TIMEFRAMES, help="bar size (default 1m)")
    parser.add_argument("--window", type=int, default=300, help="rolling z-score/correlation window in bars (default 300)")
    parser.add_argument(
        "--method",
        action="append",
        choices=METHODS,
        help="hedge method to include; repeat for several (default: all of %(choices)s)",
    )
    parser.add_argument("--indent", type=int, default=2, help="JSON indent (0 = one line)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on bad arguments (2)
        return int(exc.code or 0)
    try:
        y = read_prices(args.y_file)
        x = read_prices(args.x_file)
        bars = aligned_bars(y, x, args.timeframe)
        report = analyze_pair(
            bars["y"], bars["x"], timeframe=args.timeframe, window=args.window, methods=tuple(args.method or METHODS)
        )
    except (DecodeError, InvalidInput) as exc:
        print(f"pairs analyze: {exc}", file=sys.stderr)
        return 2
    report["files"] = {"y": args.y_file, "x": args.x_file}
    print(json.dumps(report, indent=args.indent or None, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
