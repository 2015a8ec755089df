"""`pairs analytics`: run an analytics worker for explicit pairs (``--pairs``) or ``--auto``."""

from __future__ import annotations

import argparse
import sys

from services.analytics.settings import AnalyticsSettings
from services.analytics.worker import AnalyticsWorker
from shared.errors import PairsError
from shared.instruments import Pair
from shared.lifecycle import check_heartbeat
from shared.logs import setup


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pairs analytics", description=__doc__)
    p.add_argument("--pairs", help="comma-separated pairs Y~X (e.g. binance-spot.ETHUSDT~binance-spot.BTCUSDT)")
    p.add_argument("--window", type=int, help="rolling window in observations")
    p.add_argument("--timeframes", help="comma-separated, e.g. 1s,1m,5m (add 'tick' for the tick-level view)")
    p.add_argument("--method", help="hedge method (ols)")
    p.add_argument("--auto", action="store_true", help="take a fair share of the enabled pairs in the database")
    p.add_argument("--instance", help="consumer/worker name (default host-pid)")
    p.add_argument("--check", action="store_true", help="exit 0 if a worker heartbeat is fresh, 1 otherwise")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {}
    if args.pairs:
        overrides["pairs"] = [p for p in args.pairs.split(",") if p]
    if args.window:
        overrides["window"] = args.window
    if args.timeframes:
        overrides["timeframes"] = [t for t in args.timeframes.split(",") if t]
    if args.method:
        overrides["method"] = args.method
    if args.instance:
        overrides["instance"] = args.instance
    if args.auto:
        overrides["auto"] = True
    settings = AnalyticsSettings(**overrides)
    setup("analytics", settings.log_level, settings.log_json)
    if args.check:
        return check_heartbeat(settings, "analytics", instance=args.instance)
    try:
        pairs = [Pair.parse(p) for p in settings.pairs]
        if not pairs and not settings.auto:
            print("pairs analytics: give --pairs Y~X[,...] or --auto (or ANALYTICS_PAIRS / ANALYTICS_AUTO)",
                  file=sys.stderr)  # fmt: skip
            return 2
        worker = AnalyticsWorker(settings, pairs=pairs)
    except PairsError as exc:
        print(f"pairs analytics: {exc}", file=sys.stderr)
        return 2
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
