"""`pairs demo`: the whole pipeline on one machine, one command.

1. Redis and PostgreSQL: the configured ones when reachable, otherwise embedded real servers
   started under ``--data-dir`` (services/localrun.py).
2. Migrations.
3. The feed: live Binance when reachable, otherwise a replay of ``--replay FILE...`` when given,
   otherwise the seeded simulated feed, labelled "simulated" in the feed status and the dashboard.
4. Every service as a local process: ingest, analytics, alerts, api, dashboard. A service that
   crashes is restarted (a few times, with a pause); Ctrl-C or SIGTERM stops them all cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services import localrun, migrate
from shared.config import REPO_ROOT, CommonSettings
from shared.logs import setup

log = logging.getLogger("services.demo")

LIVE_PROBE_URL = "https://api.binance.com/api/v3/ping"
LIVE_INSTRUMENTS = ("binance-spot.BTCUSDT", "binance-spot.ETHUSDT", "binance-usdm.BTCUSDT", "binance-usdm.ETHUSDT")
LIVE_PAIRS = (
    "binance-spot.ETHUSDT~binance-spot.BTCUSDT",
    "binance-usdm.ETHUSDT~binance-usdm.BTCUSDT",
    "binance-usdm.BTCUSDT~binance-spot.BTCUSDT",
)
SIMULATED_PAIRS = ("sim.ETHUSDT~sim.BTCUSDT",)
RESTARTS = 3


def live_reachable(timeout_s: float = 3.0) -> bool:
    try:
        return httpx.get(LIVE_PROBE_URL, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free TCP port")


def replay_pairs(files: list[str]) -> list[str]:
    """Pair the replayed instruments: the second one found regressed on the first, and so on."""
    from services.ingest.sources import open_tick_file

    instruments: list[str] = []
    for path in files:
        for _, item in open_tick_file(Path(path)):
            inst = getattr(item, "instrument", None)
            if inst:
                if inst not in instruments:
                    instruments.append(inst)
                break
    if len(instruments) < 2:
        raise SystemExit("pairs demo: the replay files hold fewer than two instruments; pass --pairs")
    return [f"{inst}~{instruments[0]}" for inst in instruments[1:]]


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool = True
    proc: subprocess.Popen | None = None
    restarts: int = 0
    done: bool = False
    started: float = field(default=0.0)


class Supervisor:
    def __init__(self, env: dict[str, str], grace_s: float) -> None:
        self.env = env
        self.grace_s = grace_s
        self.children: list[Child] = []

    def start(self, child: Child) -> None:
        child.proc = subprocess.Popen([sys.executable, "-m", "services.cli", *child.argv], env=self.env, cwd=REPO_ROOT)
        child.started = time.monotonic()
        if child not in self.children:
            self.children.append(child)
        log.info("started %s (pid %s)", child.name, child.proc.pid)

    def watch(self) -> None:
        for child in self.children:
            if child.done or child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            if code == 0 or not child.restart:
                log.info("%s finished (exit %s)", child.name, code)
                child.done = True
            elif child.restarts < RESTARTS:
                child.restarts += 1
                log.warning("%s exited with %s; restarting (%d/%d)", child.name, code, child.restarts, RESTARTS)
                time.sleep(1.0)
                self.start(child)
            else:
                log.error("%s keeps failing (exit %s); left stopped", child.name, code)
                child.done = True

    def stop_all(self) -> None:
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pairs demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--feed", choices=("auto", "live", "replay", "simulated"), default="auto")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="replay these files (trades dumps / recorded frames)")
    p.add_argument("--speed", default=None, help="replay/simulation speed: max, 1 (real time) or N")
    p.add_argument("--pairs", help="comma-separated Y~X pairs (default: from the feed)")
    p.add_argument("--data-dir", default=str(REPO_ROOT / ".data"), help="where embedded servers keep their data")
    p.add_argument("--api-port", type=int, default=8000)
    p.add_argument("--dashboard-port", type=int, default=8050)
    p.add_argument("--duration", type=float, help="stop everything after this many seconds")
    p.add_argument("--history", type=float, default=900.0,
                   help="simulated feed: seconds of past ticks published at start so analytics are warm")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = CommonSettings()
    setup("demo", settings.log_level, json_lines=False)
    data_dir = Path(args.data_dir)
    redis_server = localrun.ensure_redis(data_dir)
    pg_server = localrun.ensure_postgres(data_dir)
    try:
        return _run(args, settings, redis_server.url, pg_server.url)
    finally:
        redis_server.stop()
        pg_server.stop()


def _choose_feed(args: argparse.Namespace) -> str:
    if args.feed != "auto":
        return args.feed
    if args.replay:
        return "replay"
    return "live" if live_reachable() else "simulated"


def _run(args: argparse.Namespace, settings: CommonSettings, redis_url: str, database_url: str) -> int:
    env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=database_url, PAIRS_KEY_PREFIX=settings.key_prefix)
    migrate.run(CommonSettings(REDIS_URL=redis_url, DATABASE_URL=database_url))

    feed = _choose_feed(args)
    if feed == "replay":
        if not args.replay:
            raise SystemExit("pairs demo: --feed replay needs --replay FILE...")
        ingest = ["ingest", "--replay", *args.replay, "--speed", args.speed or "1", "--no-progress"]
        pairs = args.pairs.split(",") if args.pairs else replay_pairs(args.replay)
    elif feed == "live":
        ingest = ["ingest", "--live", "--instruments", ",".join(LIVE_INSTRUMENTS)]
        pairs = args.pairs.split(",") if args.pairs else list(LIVE_PAIRS)
    else:
        ingest = ["ingest", "--simulate", "--speed", args.speed or "1", "--history", str(args.history)]
        pairs = args.pairs.split(",") if args.pairs else list(SIMULATED_PAIRS)

    api_port = free_port(args.api_port)
    dash_port = free_port(args.dashboard_port)
    env.update(API_PORT=str(api_port), API_HOST="127.0.0.1", DASHBOARD_PORT=str(dash_port),
               DASHBOARD_GATEWAY_URL=f"http://127.0.0.1:{api_port}", DASHBOARD_HOST="127.0.0.1")  # fmt: skip
    sup = Supervisor(env, grace_s=settings.shutdown_grace_s)
    children = [
        Child("analytics", ["analytics", "--pairs", ",".join(pairs), "--instance", "demo-analytics"]),
        Child("api", ["api"]),
        Child("ingest", ingest, restart=feed != "replay"),
    ]
    if (REPO_ROOT / "services" / "alerts" / "__main__.py").exists():
        children.append(Child("alerts", ["alerts"]))
    if (REPO_ROOT / "services" / "dashboard" / "__main__.py").exists():
        children.append(Child("dashboard", ["dashboard"]))
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for child in children:
        sup.start(child)
    banner = (
        f"\n  feed       : {feed.upper()}" + ("  (simulated data, not a market)" if feed == "simulated" else "")
        + f"\n  pairs      : {', '.join(pairs)}"
        + f"\n  gateway    : http://127.0.0.1:{api_port}/docs"
        + f"\n  dashboard  : http://127.0.0.1:{dash_port}/"
        + f"\n  redis      : {redis_url.split('@')[-1]}\n  postgres   : {database_url.split('@')[-1]}"
        + "\n  Ctrl-C stops everything.\n"
    )  # fmt: skip
    print(banner, flush=True)
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            sup.watch()
            time.sleep(0.5)
    finally:
        log.info("stopping every service")
        sup.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
