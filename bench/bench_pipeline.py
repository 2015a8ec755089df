"""Pipeline end to end: replayed ticks -> ingest -> Redis -> analytics workers -> PostgreSQL (-> alerts).

Every service is its real process (``pairs ingest --replay``, ``pairs analytics --auto`` x N,
``pairs alerts``) on a bench-only key prefix and a bench database created and dropped here. Scenarios,
all in one run so their ratios are comparable:

* throughput: 10 generated pairs replayed at max speed with 1, 2 and 4 workers; ticks/s from the first
  tick's XADD to the last tick's acknowledgement (= its bars/metrics/checkpoint committed), CPU of every
  process (``/proc``), Redis CPU and ops/s (``INFO``), the database backends' CPU, and the scaling curve;
* latency: the same pairs paced at 2 000 ticks/s with the ``tick`` timeframe on (a metric per tick):
  tick publication (``ts_ingest_us``) -> metric entry read by a separate XREAD thread, with 1, 2, 4
  workers; then with the alerts worker and 1 000 rules on the ``tick`` metrics: tick -> alert event;
* the real spot BTC/ETH ticks (../shared/data) at max speed through the whole pipeline;
* 1 hour of 20 generated instruments (5 trades/s each) paced at ``--long-speed`` x, with trimming on
  (tick retention 60 s, metric streams MAXLEN ~1 000): Redis memory sampled along the run.

    python -m bench.bench_pipeline            # full run (about 5 minutes)
    python -m bench.bench_pipeline --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench._pipeline import DataSet, LatencyReader, Pipeline, insert_rules, write_generated
from bench._util import REDIS_URL, bench_database, fmt, machine_cpu_busy, percentile
from services.analytics.runner import merge_grace_s
from services.analytics.settings import AnalyticsSettings
from shared.config import data_dir_or_none
from shared.instruments import Pair

TARGET_TICKS_PER_S = 30_000
TARGET_METRIC_P99_MS = 50.0
TARGET_ALERT_P99_MS = 100.0
BAR_TIMEFRAMES = ["1s", "1m", "5m"]
SCENARIOS = ("throughput", "latency", "alerts", "real", "long")
REAL_FILES = ("spot_BTCUSDT_trades_20240808T235415Z_20240809T000505Z.csv.gz",
              "spot_ETHUSDT_trades_20240808T235415Z_20240809T000505Z.csv.gz")  # fmt: skip


@dataclass
class Run:
    label: str
    workers: int
    ticks: int = 0
    seconds: float = 0.0  # first tick XADD -> last tick acknowledged
    ingest_seconds: float = 0.0  # first -> last tick XADD
    cpu: dict[str, float] = field(default_factory=dict)  # process group -> CPU % over the run
    peak_rss: dict[str, float] = field(default_factory=dict)
    redis_ops: float = float("nan")
    machine_cpu: float = float("nan")  # every process on the machine, ours or not (% of one core)
    commits: float = float("nan")  # write transactions per second (whole server)
    wal_mb: float = float("nan")  # WAL MB written per second (whole server)
    rows: dict[str, int] = field(default_factory=dict)
    metric_ms: list[float] = field(default_factory=list)
    merge_wait_ms: list[float] = field(default_factory=list)  # tick published -> other leg caught up
    after_merge_ms: list[float] = field(default_factory=list)  # -> metric read
    alert_ms: list[float] = field(default_factory=list)
    memory: list[tuple[float, int, int, int, float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ticks / self.seconds if self.seconds > 0 else float("nan")


def _db_counters(dsn: str) -> tuple[int, str]:
    """(next transaction id, current WAL position) of the server: their deltas are write transactions
    and WAL bytes (server-wide; pg_stat_database's counters lag by up to a minute for busy backends)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        xid, lsn = conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot()), pg_current_wal_lsn()::text").fetchone()
    return int(xid), lsn


def _db_rates(dsn: str, before: tuple[int, str], wall: float) -> tuple[float, float]:
    xid, lsn = _db_counters(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        (wal,) = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (lsn, before[1])).fetchone()
    return (xid - before[0]) / wall, float(wal) / 2**20 / wall


def _summarize(p: Pipeline, run: Run, t_first: float, t_ingest: float, t_done: float, start: tuple) -> None:
    ops0, commits0, machine0 = start
    wall = max(time.time() - t_first, 1e-9)
    run.ticks = int(p.published or 0)
    run.seconds, run.ingest_seconds = t_done - t_first, t_ingest - t_first
    run.redis_ops = (p.client.info("stats")["total_commands_processed"] - ops0) / wall
    run.commits, run.wal_mb = _db_rates(p.dsn, commits0, wall)
    busy, total = machine_cpu_busy()
    if total > machine0[1]:
        run.machine_cpu = 100.0 * (busy - machine0[0]) / (total - machine0[1]) * (os.cpu_count() or 1)
    groups = {"analytics": "analytics-", "ingest": "ingest", "alerts": "alerts", "redis": "redis",
              "postgres": "postgres-"}  # fmt: skip
    for group, start in groups.items():
        names = [n for n in p.watch.pids if n.startswith(start)]
        if names:
            run.cpu[group] = sum(p.watch.cpu_percent(n) for n in names)
            run.peak_rss[group] = max(p.watch.peak_rss_mb(n) for n in names)
    run.cpu["analytics max/worker"] = max(p.watch.cpu_percent(n) for n in p.watch.pids if n.startswith("analytics-"))
    run.rows = p.row_counts()
    run.notes = [f"{run.label}: {n}" for n in p.notes]
    if run.rows["ticks"] != run.ticks:
        raise RuntimeError(f"{run.label}: {run.ticks} ticks published but {run.rows['ticks']} stored")


def run_scenario(dsn: str, data: DataSet, workers: int, label: str, *, speed: str = "max",
                 timeframes: list[str] | None = None, rules: int = 0, env: dict[str, str] | None = None,
                 timeout_s: float = 600.0, sample_every_s: float = 0.0) -> Run:  # fmt: skip
    run = Run(label, workers)
    latency = timeframes is not None and "tick" in timeframes
    p = Pipeline(dsn, REDIS_URL, data, workers=workers, timeframes=timeframes or BAR_TIMEFRAMES, env=env)
    reader = None
    try:
        p.prepare()
        if rules:
            insert_rules(dsn, data.pairs, rules, "tick")
        p.start_workers()
        if rules:
            p.start_alerts()
        if latency:
            reader = LatencyReader(p)
            reader.start()
        p.start_ingest(speed)
        t_first = p.first_arrival()
        start = (p.client.info("stats")["total_commands_processed"], _db_counters(dsn), machine_cpu_busy())
        p.watch.reset()
        next_sample = [0.0]

        def on_poll(now: float, done: int) -> None:
            if sample_every_s and now >= next_sample[0]:
                next_sample[0] = now + sample_every_s
                run.memory.append(_memory_sample(p, now - t_first, done))

        t_ingest, t_done = p.wait_processed(timeout_s, on_poll)
        _summarize(p, run, t_first, t_ingest, t_done, start)
        if sample_every_s:
            run.memory.append(_memory_sample(p, time.time() - t_first, p.processed()))
        if reader is not None:
            _drain(p, reader, rules)
            run.metric_ms = reader.latencies_ms(reader.metrics)
            run.merge_wait_ms, run.after_merge_ms = reader.split_ms(reader.metrics, merge_grace_us(data.pairs, env))
            run.alert_ms = reader.latencies_ms(reader.alerts)
            if not run.metric_ms:
                raise RuntimeError(f"{label}: no tick metrics were read")
    finally:
        if reader is not None:
            reader.stop_event.set()
            reader.join(5)
        p.close()
    return run


def merge_grace_us(pairs: list[Pair], env: dict[str, str] | None) -> dict[str, int]:
    """Each pair's merge grace as the workers see it (AnalyticsSettings, with the scenario's env)."""
    cfg = AnalyticsSettings(**{k.removeprefix("ANALYTICS_").lower(): v for k, v in (env or {}).items()
                               if k.startswith("ANALYTICS_")})  # fmt: skip
    return {p.id: int(merge_grace_s(p, cfg) * 1_000_000) for p in pairs}


def _drain(p: Pipeline, reader: LatencyReader, rules: int) -> None:
    """Let the last metrics (published just after their ack) and alert events reach the reader."""
    deadline = time.monotonic() + 15
    seen = -1
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = len(reader.metrics) + len(reader.alerts)
        if now == seen and (not rules or p.client.xlen(p.keys.alerts) == len(reader.alerts)):
            return
        seen = now


def _memory_sample(p: Pipeline, t: float, done: int) -> tuple[float, int, int, int, float, float]:
    """(s since start, ticks processed, tick entries held, metric entries held, our keys MB, used_memory MB)."""
    metric_keys = [p.keys.metrics(x.id) for x in p.data.pairs]
    keys = p.tick_streams + metric_keys
    pipe = p.client.pipeline(transaction=False)
    for k in keys:
        pipe.xlen(k)
    for k in keys:
        pipe.memory_usage(k)
    out = pipe.execute(raise_on_error=False)
    lens, sizes = out[: len(keys)], out[len(keys) :]
    n_ticks = sum(v for v in lens[: len(p.tick_streams)] if isinstance(v, int))
    n_metrics = sum(v for v in lens[len(p.tick_streams) :] if isinstance(v, int))
    ours = sum(v for v in sizes if isinstance(v, int)) / 2**20
    return (t, done, n_ticks, n_metrics, ours, p.client.info("memory")["used_memory"] / 2**20)


# --- tables -------------------------------------------------------------------------------
def throughput_table(runs: list[Run], cores: int) -> list[str]:
    base = runs[0].rate if runs else float("nan")
    out = ["| workers | ticks | e2e s | ticks/s end to end | vs 1 worker | ingest-only ticks/s | analytics CPU % "
           "(busiest worker) | ingest CPU % | Redis CPU % | Redis ops/s | PostgreSQL backends CPU % | DB write tx/s "
           "| WAL MB/s | machine CPU % (all processes) | rows bars / metrics |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in runs:
        ingest_rate = r.ticks / r.ingest_seconds if r.ingest_seconds > 0 else float("nan")
        out.append(f"| {r.workers} | {r.ticks:,} | {r.seconds:.2f} | {r.rate:,.0f} | {r.rate / base:.2f}x "
                   f"| {ingest_rate:,.0f} | {fmt(r.cpu.get('analytics'), 0)} ({fmt(r.cpu.get('analytics max/worker'), 0)}) "
                   f"| {fmt(r.cpu.get('ingest'), 0)} | {fmt(r.cpu.get('redis'), 0)} | {r.redis_ops:,.0f} "
                   f"| {fmt(r.cpu.get('postgres'), 0)} | {fmt(r.commits, 0)} | {fmt(r.wal_mb)} | {fmt(r.machine_cpu, 0)} "
                   f"| {r.rows['bars']:,} / {r.rows['pair_metrics']:,} |")  # fmt: skip
    out += ["", saturation_note(runs, cores)]
    return out


def saturation_note(runs: list[Run], cores: int) -> str:
    if not runs:
        return ""
    best = max(runs, key=lambda r: r.rate)
    knee = next(r for r in runs if r.rate >= 0.9 * best.rate)
    ours = sum(v for k, v in knee.cpu.items() if k != "analytics max/worker")
    parts = sorted(((v, k) for k, v in knee.cpu.items() if k != "analytics max/worker"), reverse=True)
    share = ", ".join(f"{k} {v:.0f} %" for v, k in parts)
    if ours >= 0.8 * cores * 100:
        what = f"the machine's {cores} cores (our processes use {ours:.0f} % of {cores * 100} %: {share})"
    elif knee.cpu.get("analytics max/worker", 0) >= 85:
        what = f"the analytics workers' own CPU (one process per core; {share})"
    elif knee.machine_cpu >= 0.85 * cores * 100:
        what = (f"the machine's {cores} cores, mostly to other work: all processes used {knee.machine_cpu:.0f} % "
                f"of {cores * 100} %, ours {ours:.0f} % ({share})")
    else:
        what = (f"no process is CPU-bound ({share}); the workers mostly wait on the database: "
                f"{knee.commits:,.0f} write transactions/s, one per pair per poll round")
    return (f"Scaling: best {best.rate:,.0f} ticks/s with {best.workers} worker(s); within 10 % of it from "
            f"{knee.workers} worker(s) on, so it saturates there. What saturates: {what}. "
            f"Target >= {TARGET_TICKS_PER_S:,} ticks/s for 10 pairs: "
            f"{'met' if best.rate >= TARGET_TICKS_PER_S else 'missed'}.")


def latency_table(runs: list[Run]) -> list[str]:
    out = ["| scenario | workers | ticks | tick->metric p50 ms | p99 ms | max ms | of which merge wait p50 / p99 ms "
           "| after the merge p50 / p99 ms | tick->alert p50 ms | p99 ms | alert events |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in runs:
        a = r.alert_ms
        w, m = r.merge_wait_ms, r.after_merge_ms
        out.append(f"| {r.label} | {r.workers} | {r.ticks:,} | {percentile(r.metric_ms, 50):.1f} "
                   f"| {percentile(r.metric_ms, 99):.1f} | {max(r.metric_ms, default=float('nan')):.1f} "
                   f"| {percentile(w, 50):.1f} / {percentile(w, 99):.1f} | {percentile(m, 50):.1f} / {percentile(m, 99):.1f} "
                   f"| {fmt(percentile(a, 50)) if a else '-'} | {fmt(percentile(a, 99)) if a else '-'} "
                   f"| {r.rows.get('alert_events', 0):,} |")  # fmt: skip
    if runs:
        p99 = min(percentile(r.metric_ms, 99) for r in runs)
        alerts = [r for r in runs if r.alert_ms]
        note = (f"Targets: tick->metric p99 < {TARGET_METRIC_P99_MS:.0f} ms (best here {p99:.1f} ms: "
                f"{'met' if p99 < TARGET_METRIC_P99_MS else 'missed'})")
        if alerts:
            ap99 = percentile(alerts[0].alert_ms, 99)
            note += (f"; tick->alert p99 < {TARGET_ALERT_P99_MS:.0f} ms ({ap99:.1f} ms: "
                     f"{'met' if ap99 < TARGET_ALERT_P99_MS else 'missed'})")
        out += ["", note + "."]
    return out


def other_table(runs: list[Run]) -> list[str]:
    out = ["| replay | workers | ticks | e2e s | ticks/s end to end | bars | metrics | peak RSS MB: analytics "
           "/ ingest / alerts |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for r in runs:
        rss = " / ".join(fmt(r.peak_rss.get(k), 0) for k in ("analytics", "ingest", "alerts"))
        out.append(f"| {r.label} | {r.workers} | {r.ticks:,} | {r.seconds:.2f} | {r.rate:,.0f} "
                   f"| {r.rows['bars']:,} | {r.rows['pair_metrics']:,} | {rss} |")  # fmt: skip
    return out


def memory_table(run: Run, rows: int = 12) -> list[str]:
    out = ["| t s | ticks processed | tick entries in Redis | metric entries | our keys MB | Redis used_memory MB |",
           "| ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    step = max(1, -(-len(run.memory) // rows))
    picked = run.memory[::step]
    if run.memory and picked[-1] is not run.memory[-1]:
        picked.append(run.memory[-1])
    for t, done, n_ticks, n_metrics, ours, used in picked:
        out.append(f"| {t:.0f} | {done:,} | {n_ticks:,} | {n_metrics:,} | {ours:.1f} | {used:.1f} |")
    return out


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: processes, keys, database


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    ap = argparse.ArgumentParser(prog="python -m bench.bench_pipeline", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (1 worker, a few thousand ticks)")
    ap.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--ticks", type=int, default=120_000, help="ticks in the throughput data set")
    ap.add_argument("--rate", type=float, default=2000.0, help="paced ticks/s of the latency runs")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each latency run")
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--long-minutes", type=float, default=60.0, help="event time of the long replay")
    ap.add_argument("--long-speed", type=float, default=40.0, help="replay speed of the long replay")
    ap.add_argument("--skip-real", action="store_true", help="do not replay ../shared/data")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios to run, of {', '.join(SCENARIOS)} (default: all)")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(SCENARIOS):
        ap.error(f"--only: unknown scenario(s) {', '.join(sorted(only - set(SCENARIOS)))}")
    if args.quick:
        args.workers, args.pairs, args.ticks, args.rate, args.seconds = "1", 2, 4000, 400.0, 4.0
        args.rules, args.long_minutes, args.long_speed, args.skip_real = 20, 2.0, 60.0, True
    workers = [int(w) for w in args.workers.split(",")]
    cores = os.cpu_count() or 1
    tput, lat, other = [], [], []
    long_run = None
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp, bench_database(tag="bench") as dsn:
        folder = Path(tmp)
        rate_leg = args.ticks / (2 * args.pairs) / 600.0
        for sub in ("t", "l", "h"):
            (folder / sub).mkdir()
        data_t = write_generated(folder / "t", "T", args.pairs, 600.0, rate_leg)
        data_l = write_generated(folder / "l", "L", args.pairs, args.seconds, args.rate / (2 * args.pairs))
        for w in workers if "throughput" in only else []:
            tput.append(run_scenario(dsn, data_t, w, f"throughput {w}w"))
        # (quick: the alerts run below also measures tick->metric)
        for w in [] if args.quick or "latency" not in only else workers:
            lat.append(run_scenario(dsn, data_l, w, f"paced {args.rate:,.0f} ticks/s", speed="1",
                                    timeframes=["tick", "1s", "1m"]))  # fmt: skip
        alert_workers = min(2, max(workers))
        if "alerts" in only:
            lat.append(run_scenario(dsn, data_l, alert_workers, f"paced {args.rate:,.0f} ticks/s + alerts "
                                    f"({args.rules:,} rules)", speed="1", timeframes=["tick", "1s", "1m"],
                                    rules=args.rules))  # fmt: skip
        data_dir = data_dir_or_none()
        if data_dir is not None and not args.skip_real and "real" in only:
            files = [data_dir / "binance" / "trades" / n for n in REAL_FILES]
            real = DataSet("real spot", files, [Pair.parse("binance-spot.ETHUSDT~binance-spot.BTCUSDT")], None)
            other.append(run_scenario(dsn, real, 1, "real spot ETHUSDT~BTCUSDT, max speed"))
        if "long" in only:
            data_h = write_generated(folder / "h", "H", 10, args.long_minutes * 60, 5.0)
            long_run = run_scenario(
                dsn, data_h, min(2, max(workers)), f"{args.long_minutes:g} min x 20 instr. @ 5 trades/s, "
                f"{args.long_speed:g}x", speed=str(args.long_speed), sample_every_s=1.0 if args.quick else 5.0,
                env={"INGEST_TICK_RETENTION_S": "60", "ANALYTICS_METRIC_STREAM_MAXLEN": "1000"})  # fmt: skip
            other.append(long_run)
    lines = []
    if tput:
        lines += [f"Throughput: {args.pairs} generated pairs, {tput[0].ticks:,} ticks replayed at max speed, "
                  f"timeframes {', '.join(BAR_TIMEFRAMES)} (window {300}, OLS), {cores} cores.", ""]
        lines += throughput_table(tput, cores) + [""]
    lines += [f"Latency: {args.pairs} pairs paced at {args.rate:,.0f} ticks/s for {args.seconds:g} s, timeframes "
              "tick, 1s, 1m (a metric per tick). Publication = the tick's ts_ingest_us (stamped by ingest when "
              "it releases the tick; includes ingest's queue); arrival = XREAD by a separate thread. It also "
              "includes the event-time merge: a tick is processed once the other leg has a later tick or is "
              "drained and the pair's merge grace has passed (none here: both legs on one venue, see README).",
              ""]
    lines += latency_table(lat)
    lines += ["", "Other replays through the whole pipeline, and peak RSS of each service:", ""]
    lines += other_table(other)
    if long_run is not None:
        lines += ["", "Redis memory during the long replay with trimming on (tick streams MINID ~ now - 60 s, "
                  "metric streams MAXLEN ~ 1 000): flat once the retention window is full.", ""]
        lines += memory_table(long_run)
    notes = [n for r in tput + lat + other for n in r.notes]
    if notes:
        lines += ["", "Anomalies seen during the run:", ""] + [f"- {n}" for n in notes]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
