"""Run every benchmark module and write the performance report (docs/benchmarks.md).

Each module runs as ``python -m bench.<module>`` in its own subprocess (its own process group) with a
time budget, so a module that fails or overruns is reported and the rest still run; the suite as a
whole has a budget too (``--budget``, 10 minutes by default). The report records the exact command,
the date, the machine (cores, memory, CPU model, Python, Redis and PostgreSQL server versions, load
average at the start and end) and each module's markdown output: every ratio in it was measured side
by side within that module's run.

    make bench                                  # = python -m bench.run_all
    pairs bench --quick --only storage,hedge --output /tmp/bench.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from bench._util import ADMIN_URL, REDIS_URL, cpu_model, memory_total_gb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Module:
    name: str  # bench.bench_<name>
    title: str
    budget_s: float  # full run; --quick runs get a quarter of it (at least 60 s)
    about: str
    args: tuple[str, ...] = ()  # full-run options sizing the module to its share of the 10-minute suite


# In report order: the comparisons first, the heaviest modules last (a suite over its budget
# skips what is left, and says so).
MODULES: tuple[Module, ...] = (
    Module("hedge", "Analytics update path vs recomputing the window (pandas / statsmodels / scikit-learn)", 90,
           "Per-update cost of the streaming hedge, z-score and correlation against refitting the window at "
           "every update, for windows 300 and 3 000, per hedge method."),
    Module("stats", "ADF / cointegration vs statsmodels", 90,
           "Time of the project's ADF and cointegration tests against statsmodels on the same inputs, and "
           "whether the results are equal."),
    Module("storage", "Storage: write paths and bar queries (plain PostgreSQL)", 90,
           "Bars/metrics write rate: binary COPY + upsert (the worker's path) against row-by-row and multi-row "
           "upserts; range queries over 1 day of 1s bars and 30 days of 1m bars."),
    Module("pipeline", "Pipeline end to end: throughput, scaling, latency, memory", 360,
           "Ingest -> Redis -> analytics -> PostgreSQL with 1, 2 and 4 worker processes; tick -> metric and "
           "tick -> alert latency at 2 000 ticks/s; real and 1 h replays; Redis memory with trimming on."),
    Module("api", "Gateway: REST and WebSocket", 90,
           "Snapshot and bars endpoints req/s and p99 at 50 concurrent clients; WebSocket fan-out to 200 clients.",
           ("--seconds", "5")),
    Module("ingest_replay", "Ingest: replay files -> Redis", 120,
           "File parse + normalise + pipelined XADD, real spot data and 1 h x 20 generated instruments."),
    Module("ingest_live", "Ingest: local Binance-compatible server -> Redis", 120,
           "Frames/s from a local WebSocket server through the live ingest path, and receive -> XADD latency.",
           ("--frames", "30000")),
    Module("alerts", "Alerts: metric -> alert event", 60,
           "The alerts worker with 1 000 rules at 2 000 metrics/s: metric publication -> alert event latency "
           "(the pipeline section has the end-to-end tick -> alert figure)."),
    Module("research", "Research tools: screening, backtest, walk-forward", 120,
           "Universe screening, a long backtest and a walk-forward grid, with 1 vs 2 worker processes."),
)


@dataclass
class Result:
    module: Module
    status: str  # ok | failed (rc N) | timed out | skipped: ...
    seconds: float
    output: str
    error_tail: str = ""


def machine_info() -> dict[str, str]:
    info = {
        "cores": str(os.cpu_count()),
        "memory": f"{memory_total_gb():.1f} GiB",
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        info["redis"] = str(client.info("server")["redis_version"])
        client.close()
    except redis.RedisError as exc:
        info["redis"] = f"unreachable ({exc})"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            info["postgresql"] = str(conn.execute("SHOW server_version").fetchone()[0])
            ts = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
            info["timescaledb"] = "available" if ts[0] else "not installed (plain PostgreSQL)"
    except psycopg.Error as exc:
        info["postgresql"] = f"unreachable ({exc})"
    return info


def run_module(module: Module, quick: bool, timeout_s: float) -> Result:
    cmd = [sys.executable, "-m", f"bench.bench_{module.name}", *(["--quick"] if quick else module.args)]
    started = time.perf_counter()
    # Own session = own process group: a timeout kills the module and every process it started.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # modules clean up (services, keys, databases) on SIGTERM
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        _kill_group(proc)
        return Result(module, f"timed out after {timeout_s:.0f} s", time.perf_counter() - started,
                      out.decode(errors="replace"), _tail(err))  # fmt: skip
    _kill_group(proc)  # anything the module left running
    seconds = time.perf_counter() - started
    status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    return Result(module, status, seconds, out.decode(errors="replace"), "" if status == "ok" else _tail(err))


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def _tail(err: bytes, lines: int = 15) -> str:
    return "\n".join(err.decode(errors="replace").rstrip().splitlines()[-lines:])


def render(results: list[Result], command: str, started: dt.datetime, info: dict[str, str],
           load_start: tuple[float, float, float], load_end: tuple[float, float, float], quick: bool) -> str:  # fmt: skip
    cores = os.cpu_count() or 1
    lines = ["# Benchmarks", "",
             "Generated by `bench/run_all.py`; do not edit by hand. Every ratio is measured side by side in the same "
             "run (this machine is shared and noisy, so absolute numbers move between runs; ratios much less).", "",
             f"- Command: `{command}`" + (" (quick smoke sizes: not representative)" if quick else ""),
             f"- Date (UTC): {started:%Y-%m-%d %H:%M}",
             f"- Machine: {info['cores']} cores ({info['cpu']}), {info['memory']} memory, {info['os']}",
             f"- Python {info['python']}; Redis {info['redis']}; PostgreSQL {info['postgresql']} "
             f"(TimescaleDB {info.get('timescaledb', '?')})",
             f"- Load average (1/5/15 min) at start: {_load(load_start)}; at end: {_load(load_end)}"]  # fmt: skip
    if max(load_start[0], load_end[0]) > cores:
        lines.append(f"- **Note:** the load average exceeded the {cores} cores: other agents' builds and tests were "
                     "running on the machine during this run, so absolute rates understate an unshared machine "
                     "(CPU-time columns and same-run ratios are the robust figures).")  # fmt: skip
    lines += ["", "| module | section | status | seconds |", "| --- | --- | --- | ---: |"]
    for r in results:
        lines.append(f"| `bench.bench_{r.module.name}` | {r.module.title} | {r.status} | {r.seconds:.0f} |")
    for r in results:
        lines += ["", f"## {r.module.title}", "", r.module.about, "",
                  f"`{_module_command(r.module, quick)}`: {r.status}, "
                  f"{r.seconds:.0f} s.", ""]  # fmt: skip
        if r.output.strip():
            lines += [_demote(line) for line in r.output.strip().splitlines()]
        if r.error_tail:
            lines += ["", "```text", r.error_tail, "```"]
    return "\n".join(lines) + "\n"


def _demote(line: str) -> str:
    """A module's own headings go under its section (### and below)."""
    if not line.startswith("#"):
        return line
    level = len(line) - len(line.lstrip("#"))
    return "#" * max(3, level + 1) + line[level:]


def _module_command(module: Module, quick: bool) -> str:
    return shlex.join(["python", "-m", f"bench.bench_{module.name}", *(["--quick"] if quick else module.args)])


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in load)


def select(only: str | None) -> list[Module]:
    if not only:
        return list(MODULES)
    names = [n.strip().removeprefix("bench_") for n in only.split(",") if n.strip()]
    known = {m.name: m for m in MODULES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="each module's tiny smoke run")
    ap.add_argument("--only", help="comma-separated module names (e.g. storage,hedge)")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="report path (default docs/benchmarks.md)")
    ap.add_argument("--budget", type=float, default=600.0, help="time budget of the whole suite, seconds")
    args = ap.parse_args(argv)
    modules = select(args.only)
    command = "python -m bench.run_all" + ("" if not argv else " " + shlex.join(argv))
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    info = machine_info()
    deadline = time.monotonic() + args.budget
    results: list[Result] = []
    for module in modules:
        if importlib.util.find_spec(f"bench.bench_{module.name}") is None:
            results.append(Result(module, "skipped: module not present", 0.0, ""))
            continue
        budget = max(60.0, module.budget_s / 4) if args.quick else module.budget_s
        remaining = deadline - time.monotonic()
        if remaining < budget / 2:  # it would be cut off before printing anything
            results.append(Result(module, "skipped: suite time budget used up", 0.0, ""))
            continue
        print(f"bench: {module.name} (budget {min(budget, remaining):.0f} s) ...", file=sys.stderr, flush=True)
        result = run_module(module, args.quick, min(budget, remaining))
        print(f"bench: {module.name}: {result.status} in {result.seconds:.0f} s", file=sys.stderr, flush=True)
        results.append(result)
    text = render(results, command, started, info, load_start, os.getloadavg(), args.quick)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"bench: wrote {args.output}", file=sys.stderr)
    return 0 if all(r.status == "ok" or r.status.startswith("skipped: module") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
