"""`pairs` console script: one subcommand per service plus tools.

Each subcommand lives in its own module with ``main(argv) -> int``; modules are imported lazily so
``pairs api`` does not import Dash, and ``pairs --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("services.ingest.__main__", "feed ticks from Binance, a replay file or the simulator into Redis"),
    "analytics": ("services.analytics.__main__", "run an analytics worker (bars + pair metrics)"),
    "alerts": ("services.alerts.__main__", "run the alerts worker"),
    "api": ("services.api.__main__", "run the FastAPI gateway"),
    "dashboard": ("services.dashboard.__main__", "run the Dash front end"),
    "demo": ("services.demo", "run the whole pipeline locally with the dashboard"),
    "migrate": ("services.migrate", "apply database migrations (and TimescaleDB policies when available)"),
    "analyze": ("services.analytics.analyze", "offline analysis of two price files, printed as JSON"),
    "backtest": ("services.research.backtest_cli", "backtest a pair strategy"),
    "screen": ("services.research.screen_cli", "screen a universe of instruments for pairs"),
    "download": ("services.ingest.download", "download official Binance dump files (checksum verified)"),
    "bench": ("bench.run_all", "run the benchmark suite"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: pairs <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`pairs <command> --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"pairs: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
