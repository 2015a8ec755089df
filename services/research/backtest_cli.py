"""``pairs backtest``: backtest a pair strategy on price files or database bars, optionally with a
grid search (``--search``) or a walk-forward evaluation (``--walk-forward TRAIN,TEST``).

Examples::

    pairs backtest --y ETH.csv.gz --x BTC.csv.gz --timeframe 1m --window 300 --entry 2 --exit 0.5 \\
        --stop 4 --method ols --sizing beta --fee-bps 4 --slippage-bps 1 --json
    pairs backtest --from-db --pair binance-usdm.ETHUSDT~binance-usdm.BTCUSDT --from 2025-06-07 --to 2025-06-16
    pairs backtest --y ETH.csv --x BTC.csv --walk-forward 4000,1000 --grid-window 100,300 --workers 2

Exit codes: 0 success, 2 bad input (arguments, files, too little data), 1 database unreachable.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from typing import Any

from services.research.common import csv_of, database, print_json, run_command, utc_datetime
from shared.errors import InvalidInput
from shared.instruments import Pair
from shared.research.backtest import BacktestResult, run_backtest
from shared.research.execution import CostModel, ExecutionParams
from shared.research.pair_bars import PairBars
from shared.research.prices import clip_range, load_bars_db, read_funding_file, read_price_file
from shared.research.search import Grid, SearchResult, grid_search, walk_forward
from shared.research.signals import DEFAULT_KALMAN_DELTA, HEDGE_METHODS, SignalParams
from shared.timeframes import BAR_TIMEFRAMES

PROG = "pairs backtest"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Backtest a two-leg pair strategy without look-ahead.")
    src = p.add_argument_group("data")
    src.add_argument("--y", help="price file of the y leg (kline or timestamp,close CSV, optionally .gz)")
    src.add_argument("--x", help="price file of the x leg")
    src.add_argument("--from-db", action="store_true", help="read bars from the database 'bars' table")
    src.add_argument("--pair", help="Y~X instrument ids for --from-db (e.g. binance-usdm.ETHUSDT~binance-usdm.BTCUSDT)")
    src.add_argument("--database-url", help="default: DATABASE_URL")
    src.add_argument("--from", dest="start", type=utc_datetime, help="first bar time (inclusive, UTC)")
    src.add_argument("--to", dest="end", type=utc_datetime, help="end time (exclusive, UTC)")
    src.add_argument("--timeframe", default="1m", choices=BAR_TIMEFRAMES)
    src.add_argument("--funding-y", help="CSV of funding rates for y (fundingTime,fundingRate)")
    src.add_argument("--funding-x", help="CSV of funding rates for x")
    sig = p.add_argument_group("signal")
    sig.add_argument("--window", type=int, default=300)
    sig.add_argument("--entry", type=float, default=2.0)
    sig.add_argument("--exit", type=float, default=0.5)
    sig.add_argument("--stop", type=float, default=4.0, help="stop-loss |z| (0 disables)")
    sig.add_argument("--max-hold", type=int, help="time stop in bars")
    sig.add_argument("--method", default="ols", choices=HEDGE_METHODS)
    sig.add_argument("--beta", type=float, help="hedge ratio for --method fixed")
    sig.add_argument("--kalman-delta", type=float, default=DEFAULT_KALMAN_DELTA)
    ex = p.add_argument_group("execution and costs")
    ex.add_argument("--sizing", default="beta", choices=("beta", "dollar"))
    ex.add_argument("--capital", type=float, default=10_000.0)
    ex.add_argument("--notional", type=float, default=5_000.0, help="y-leg notional per trade (quote currency)")
    ex.add_argument("--fill", default="next_open", choices=("next_open", "close"))
    ex.add_argument("--fee-bps", type=float, default=4.0, help="fee per leg and fill, in bps")
    ex.add_argument("--maker", action="store_true", help="the fee is a maker fee (default: taker)")
    ex.add_argument("--slippage-bps", type=float, default=0.0)
    ex.add_argument("--slippage-range", type=float, default=0.0, help="slippage as a fraction of the bar's high-low")
    se = p.add_argument_group("parameter search")
    se.add_argument("--search", action="store_true", help="grid search on the whole sample (in-sample)")
    se.add_argument("--walk-forward", type=csv_of(int), metavar="TRAIN,TEST", help="walk-forward windows in bars")
    se.add_argument("--grid-entry", type=csv_of(float), default=[1.5, 2.0, 2.5])
    se.add_argument("--grid-exit", type=csv_of(float), default=[0.0, 0.5])
    se.add_argument("--grid-window", type=csv_of(int), default=[100, 300])
    se.add_argument("--grid-method", type=csv_of(str), default=["ols"])
    se.add_argument("--workers", type=int, default=1)
    se.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print JSON instead of a text report")
    out.add_argument("--equity", action="store_true", help="include the equity curve in the JSON output")
    return p


def _load(args: argparse.Namespace) -> PairBars:
    if args.from_db:
        if not args.pair or args.y or args.x:
            raise InvalidInput("--from-db needs --pair Y~X (and no --y/--x)")
        pair = Pair.parse(args.pair)
        with database(args.database_url) as conn:
            y = load_bars_db(conn, pair.y.id, args.timeframe, args.start, args.end)
            x = load_bars_db(conn, pair.x.id, args.timeframe, args.start, args.end)
        names = (pair.y.id, pair.x.id)
    else:
        if not (args.y and args.x):
            raise InvalidInput("give --y FILE and --x FILE, or --from-db --pair Y~X")
        y = clip_range(read_price_file(args.y), args.start, args.end)
        x = clip_range(read_price_file(args.x), args.start, args.end)
        names = (args.y, args.x)
    bars = PairBars.from_frames(y, x, names=names)
    if args.funding_y or args.funding_x:
        fy = read_funding_file(args.funding_y, bars.ts_us) if args.funding_y else None
        fx = read_funding_file(args.funding_x, bars.ts_us) if args.funding_x else None
        bars = PairBars(bars.ts_us, bars.y, bars.x, fy, fx, bars.names)
    return bars


def _configs(args: argparse.Namespace) -> tuple[SignalParams, ExecutionParams, CostModel]:
    signal = SignalParams(
        window=args.window, entry=args.entry, exit=args.exit, stop=args.stop if args.stop > 0 else math.inf,
        max_hold_bars=args.max_hold, method=args.method, fixed_beta=args.beta, kalman_delta=args.kalman_delta,
    )
    execution = ExecutionParams(capital=args.capital, notional=args.notional, sizing=args.sizing, fill=args.fill)
    fee = {"maker_fee_bps": args.fee_bps} if args.maker else {"taker_fee_bps": args.fee_bps}
    costs = CostModel(
        **fee, liquidity="maker" if args.maker else "taker",
        slippage_bps=args.slippage_bps, slippage_range_frac=args.slippage_range,
    )
    return signal, execution, costs


def _report(res: BacktestResult, names: tuple[str, str]) -> str:
    s = res.stats
    lines = [
        f"pair {names[0]} ~ {names[1]}  ({s.bars} {res.timeframe} bars, method {res.signal.method}, "
        f"window {res.signal.window}, entry {res.signal.entry}, exit {res.signal.exit}, stop {res.signal.stop})",
        "",
        "| statistic | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in s.as_dict().items()]
    return "\n".join(lines)


def _search_payload(result: SearchResult, walk: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "mode": "walk_forward" if walk else "in_sample_grid",
        "folds": result.folds.to_dict(orient="records"),
        "heatmap_train_sharpe": result.heatmap("train_sharpe").to_dict(),
    }
    if walk:
        payload["oos_return"] = result.oos_return
        payload["heatmap_test_sharpe"] = result.heatmap("test_sharpe").to_dict()
    payload["table"] = result.table.to_dict(orient="records")
    return payload


def _body(args: argparse.Namespace) -> int:
    signal, execution, costs = _configs(args)
    bars = _load(args)
    if args.search or args.walk_forward:
        grid = Grid(entry=args.grid_entry, exit=args.grid_exit, window=args.grid_window,
                    method=args.grid_method, stop=signal.stop, max_hold_bars=signal.max_hold_bars)
        common = dict(execution=execution, costs=costs, timeframe=args.timeframe,
                      workers=args.workers, progress=args.progress)
        if args.walk_forward:
            if len(args.walk_forward) != 2:
                raise InvalidInput("--walk-forward takes TRAIN,TEST (two bar counts)")
            result = walk_forward(bars, grid, args.walk_forward[0], args.walk_forward[1], **common)  # type: ignore[arg-type]
        else:
            result = grid_search(bars, grid, **common)  # type: ignore[arg-type]
        payload = _search_payload(result, bool(args.walk_forward))
        if args.json:
            print_json(payload)
        else:
            cols = [c for c in result.folds.columns if c not in ("param_id",)]
            print(result.folds[cols].to_markdown(index=False) if _has_tabulate() else result.folds[cols].to_string())
            if args.walk_forward:
                print(f"\nout-of-sample compounded return: {result.oos_return:.6g}")
        return 0
    res = run_backtest(bars, signal, execution, costs, timeframe=args.timeframe)
    if args.json:
        payload = {
            "pair": {"y": bars.names[0], "x": bars.names[1]},
            "timeframe": args.timeframe,
            "signal": asdict(signal),
            "stats": res.stats.as_dict(),
            "trades": [t.as_dict() for t in res.trades],
        }
        if args.equity:
            payload["equity"] = {"ts_us": res.ts_us, "equity": res.equity, "drawdown": res.drawdown}
        print_json(payload)
    else:
        print(_report(res, bars.names))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        _parser().error("--workers must be >= 1")
    return run_command(PROG, lambda: _body(args))
