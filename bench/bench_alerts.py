"""Alert latency: metric published on ``metrics:{pair}`` -> alert event on the ``alerts`` stream.

Runs the real worker (``python -m services.alerts``, a subprocess) against Redis and PostgreSQL with
N rules spread over the pairs, publishes metrics at a paced rate whose z-scores swing through ±2 so
rules fire, and reads the ``alerts`` stream to time each event against its metric's publish time.
Two phases in the same run: a light baseline (10 % of the rate) and the target rate; the table shows
both and their ratio.

    python -m bench.bench_alerts            # 2 000 metrics/s, 1 000 rules, 10 s per phase
    python -m bench.bench_alerts --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
import orjson
import psycopg
import redis

from shared.db import migrate
from shared.messages import AlertEvent, Metric, from_fields, to_fields
from shared.streams import Keys

ADMIN_URL = os.environ.get("PAIRS_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0_US = 1_800_000_000_000_000


@dataclass
class Phase:
    name: str
    rate: float
    seconds: float
    published: int = 0
    events: int = 0
    latencies_ms: list[float] | None = None


def _pairs(n: int) -> list[str]:
    return [f"sim.Y{i:04d}~sim.X{i:04d}" for i in range(n)]


def _insert_rules(dsn: str, pairs: list[str], n_rules: int) -> None:
    """Half condition rules with hysteresis, half signal rules with a gate, spread round-robin over the pairs."""
    rows = []
    for i in range(n_rules):
        pair = pairs[i % len(pairs)]
        level = 2.0 + 0.1 * ((i // len(pairs)) % 5)
        if i % 2 == 0:
            spec = {"trigger": {"all": [{"field": "zscore", "abs": True, "op": ">", "value": level},
                                        {"field": "correlation", "op": ">", "value": 0.5}]},
                    "clear": {"field": "zscore", "abs": True, "op": "<", "value": 1.0}, "notify_clear": False}
            rows.append((f"c{i}", pair, "condition", f"|zscore| > {level}", orjson.dumps(spec).decode()))
        else:
            spec = {"field": "zscore", "entry": level, "exit": 0.5, "stop": 6.0,
                    "gate": {"field": "adf_p", "op": "<=", "value": 0.05}}
            rows.append((f"s{i}", pair, "signal", f"signal {level}", orjson.dumps(spec).decode()))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE alert_rules, alert_events, alert_state, alert_delivery_deadletters RESTART IDENTITY")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_rules (name, pair, timeframe, kind, expression, spec) VALUES (%s, %s, '1s', %s, %s, %s)",
                rows,
            )


class AlertReader(threading.Thread):
    """Blocks on the alerts stream and stamps each event with the time it became visible."""

    def __init__(self, redis_url: str, keys: Keys) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.keys = keys
        self.seen: list[tuple[AlertEvent, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = "0-0"
        while not self.stop.is_set():
            reply = self.client.xread({self.keys.alerts: last}, count=1000, block=100)
            now = time.perf_counter()
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    self.seen.append((from_fields(fields, AlertEvent), now))
        self.client.close()


def _publish_phase(client: redis.Redis, keys: Keys, pairs: list[str], phase: Phase, seq0: int,
                   sent_at: dict[tuple[str, int], float], rng: np.random.Generator, period: float) -> int:
    """Publish ``rate`` metrics/s round-robin over the pairs in 10 ms ticks; returns the next seq."""
    total = int(phase.rate * phase.seconds)
    tick_s = 0.01
    per_tick = max(1, round(phase.rate * tick_s))
    start = time.perf_counter()
    sent = 0
    seq = seq0
    phases = rng.uniform(0, 2 * math.pi, len(pairs))
    while sent < total:
        pipe = client.pipeline(transaction=False)
        batch = []
        for _ in range(min(per_tick, total - sent)):
            k = sent % len(pairs)
            pair_seq = seq + sent // len(pairs)
            # z swings through ±3 with a period of ``period`` observations, plus noise: rules cross regularly
            z = 3.0 * math.sin(2 * math.pi * pair_seq / period + phases[k]) + rng.normal(0, 0.2)
            m = Metric(pair=pairs[k], timeframe="1s", ts_event_us=T0_US + pair_seq * 1_000_000, seq=pair_seq,
                       method="ols", window=100, y_price=100.0, x_price=50.0, warm=True, beta=2.0, alpha=0.0,
                       r2=0.9, spread=z, zscore=z, correlation=0.8, adf_stat=-4.0, adf_p=0.01, half_life=10.0,
                       ts_compute_us=T0_US)
            pipe.xadd(keys.metrics(pairs[k]), to_fields(m))
            batch.append((pairs[k], m.ts_event_us))
            sent += 1
        now = time.perf_counter()
        pipe.execute()
        for key in batch:
            sent_at[key] = now
        target = start + (sent / phase.rate)
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    phase.published = total
    return seq + math.ceil(total / len(pairs))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _wait_consumed(client: redis.Redis, keys: Keys, expected: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = client.get(keys.heartbeat("alerts", "bench"))
        if raw is not None and orjson.loads(raw).get("metrics", 0) >= expected:
            return True
        time.sleep(0.1)
    return False


def run(redis_url: str, dsn: str, prefix: str, rate: float, n_rules: int, n_pairs: int, seconds: float,
        period: float = 200.0) -> list[Phase]:
    keys = Keys(prefix)
    pairs = _pairs(n_pairs)
    _insert_rules(dsn, pairs, n_rules)
    client = redis.Redis.from_url(redis_url)
    for pair in pairs:  # the streams exist before the worker starts, so no discovery delay is timed
        client.xadd(keys.metrics(pair), {"data": b"{}"})
        client.xtrim(keys.metrics(pair), maxlen=0)
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": dsn, "PAIRS_KEY_PREFIX": prefix,
           "LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"), "LOG_JSON": "false", "ALERTS_INSTANCE": "bench", "ALERTS_PROMETHEUS_PORT": "0", "ALERTS_BLOCK_MS": "100",
           "HEARTBEAT_INTERVAL_S": "0.2"}
    worker = subprocess.Popen([sys.executable, "-m", "services.alerts"], env=env,
                              stderr=None if os.environ.get("BENCH_WORKER_LOG_LEVEL") else subprocess.PIPE)
    reader = AlertReader(redis_url, keys)
    reader.start()
    phases = [Phase("baseline (10 % rate)", rate / 10, seconds), Phase("target rate", rate, seconds)]
    sent_at: dict[tuple[str, int], float] = {}
    rng = np.random.default_rng(7)
    try:
        if not _wait_consumed(client, keys, 0, 60):
            raise RuntimeError("the alerts worker did not start: " + worker.stderr.read1().decode(errors="replace"))
        seq, consumed = 0, 0
        for phase in phases:
            first_event = len(reader.seen)
            seq = _publish_phase(client, keys, pairs, phase, seq, sent_at, rng, period)
            consumed += phase.published
            if not _wait_consumed(client, keys, consumed, 120):
                raise RuntimeError(f"worker did not catch up in phase {phase.name}")
            time.sleep(0.3)  # let the last events reach the stream reader
            events = reader.seen[first_event:]
            phase.events = len(events)
            phase.latencies_ms = [(seen - sent_at[(e.pair, e.ts_event_us)]) * 1000 for e, seen in events
                                  if (e.pair, e.ts_event_us) in sent_at]
    finally:
        reader.stop.set()
        reader.join(5)
        worker.terminate()
        worker.wait(30)
        for pair in pairs:
            client.delete(keys.metrics(pair))
        leftovers = list(client.scan_iter(match=keys.pattern(), count=1000))
        if leftovers:
            client.delete(*leftovers)
        client.close()
    return phases


def table(phases: list[Phase], n_rules: int, n_pairs: int, period: float) -> str:
    lines = [
        f"Alerts: metric publish -> event on the alerts stream ({n_rules} rules over {n_pairs} pairs, "
        f"z period {period:g} observations, worker subprocess)",
        "",
        "| phase | metrics/s | metrics | events | events/s | p50 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        lat = p.latencies_ms or []
        lines.append(f"| {p.name} | {p.rate:,.0f} | {p.published:,} | {p.events:,} | {p.events / p.seconds:,.0f} | "
                     f"{_percentile(lat, 50):.2f} | "
                     f"{_percentile(lat, 99):.2f} | {max(lat, default=float('nan')):.2f} |")
    base, full = phases[0].latencies_ms or [], phases[1].latencies_ms or []
    if base and full:
        lines.append(f"| ratio target/baseline | {phases[1].rate / phases[0].rate:.0f}x | | | | "
                     f"{_percentile(full, 50) / _percentile(base, 50):.2f}x | "
                     f"{_percentile(full, 99) / _percentile(base, 99):.2f}x | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_alerts", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run (200 metrics/s, 100 rules, 1 s per phase)")
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--rules", type=int, default=1000)
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--period", type=float, default=200.0,
                   help="z-score swing period in observations per pair (smaller: more alert events)")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--database-url", help="a migrated database to use (default: a temporary one, dropped after)")
    p.add_argument("--key-prefix", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.rate, args.rules, args.pairs, args.seconds, args.period = 200.0, 100, 20, 1.0, 20.0
    prefix = args.key_prefix or f"bench:{uuid.uuid4().hex[:8]}:"
    temp_db = None
    dsn = args.database_url
    if dsn is None:
        temp_db = f"pairs_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{temp_db}"')
        dsn = ADMIN_URL.rsplit("/", 1)[0] + "/" + temp_db
        migrate.upgrade(dsn)
    try:
        phases = run(args.redis_url, dsn, prefix, args.rate, args.rules, args.pairs, args.seconds, args.period)
    finally:
        if temp_db is not None:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{temp_db}" WITH (FORCE)')
    print(table(phases, args.rules, args.pairs, args.period))
    return 0


if __name__ == "__main__":
    sys.exit(main())
