"""Storage: bar/metric write rates by write path, and bar range queries, on plain PostgreSQL.

Write paths compared side by side on the same rows, each batch in its own transaction, each path
starting from an empty table (and then once more over the same keys, as a redelivery upserts):

* ``COPY + upsert``: the analytics worker's own path, ``PairStore.write`` (binary COPY into a temp
  table, one ``INSERT ... ON CONFLICT DO UPDATE``, plus the pair checkpoint row);
* ``executemany``: one parameterised upsert per row (psycopg 3 pipelines them: no round trip each);
* ``multi-row VALUES``: one upsert statement carrying the whole batch.

Queries on a bars table holding 1 day of 1s bars and 30 days of 1m bars for several instruments
(primary key (instrument, timeframe, ts)): the full range fetched into Python, and the same range
downsampled in SQL to ~1 000 buckets (what a chart asks for).

    python -m bench.bench_storage            # 50 000 bars / 20 000 metrics, 1 day of 1s + 30 days of 1m
    python -m bench.bench_storage --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psycopg

from bench._util import bench_database, fmt, truncate_all
from services.analytics.engine import EngineOutput
from services.analytics.store import BAR_COLUMNS, METRIC_COLUMNS, PairBatch, PairStore
from shared.messages import Bar, Metric
from shared.timeutil import us_to_datetime

T0_US = 1_723_161_600_000_000  # 2024-08-09 00:00 UTC
BATCH = 1000
INSTRUMENTS = 4


def make_bars(n: int, timeframe: str = "1s", step_us: int = 1_000_000, instruments: int = INSTRUMENTS) -> list[Bar]:
    rng = np.random.default_rng(3)
    per = n // instruments
    closes = 60_000 + np.cumsum(rng.normal(0, 5, (instruments, per)), axis=1)
    return [Bar(instrument=f"binance-spot.B{k}USDT", timeframe=timeframe, ts_event_us=T0_US + i * step_us,
                open=float(c), high=float(c) + 1.5, low=float(c) - 1.5, close=float(c) + 0.5, volume=1.25,
                buy_volume=0.5, trades=7, ts_compute_us=T0_US)
            for k in range(instruments) for i, c in enumerate(closes[k])]  # fmt: skip


def make_metrics(n: int) -> list[Metric]:
    rng = np.random.default_rng(4)
    z = rng.normal(0, 1, n)
    return [Metric(pair="binance-spot.B0USDT~binance-spot.B1USDT", timeframe="1s", ts_event_us=T0_US + i * 1_000_000,
                   seq=i, method="ols", window=300, y_price=3000.0, x_price=60000.0, warm=True, beta=0.05,
                   alpha=1.0, r2=0.9, spread=float(z[i]), zscore=float(z[i]), correlation=0.8, adf_stat=-3.5,
                   adf_p=0.01, half_life=40.0, ts_compute_us=T0_US) for i in range(n)]  # fmt: skip


def _bar_row(b: Bar) -> tuple:
    return (b.instrument, b.timeframe, us_to_datetime(b.ts_event_us), b.open, b.high, b.low, b.close, b.volume,
            b.buy_volume, b.trades)  # fmt: skip


def _metric_row(m: Metric) -> tuple:
    return (m.pair, m.timeframe, us_to_datetime(m.ts_event_us), m.seq, m.method, m.window, m.y_price, m.x_price,
            m.warm, m.beta, m.alpha, m.r2, m.spread, m.zscore, m.correlation, m.adf_stat, m.adf_p, m.half_life,
            us_to_datetime(m.ts_compute_us))  # fmt: skip


TABLES = {"bars": (BAR_COLUMNS, ("instrument", "timeframe", "ts"), _bar_row),
          "pair_metrics": (METRIC_COLUMNS, ("pair", "timeframe", "ts", "seq"), _metric_row)}  # fmt: skip


def _upsert_sql(table: str, values: str) -> str:
    cols, keys, _ = TABLES[table]
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c not in keys)
    return (f"INSERT INTO {table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)}) VALUES {values} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")  # fmt: skip


def write_copy(conn: psycopg.Connection, table: str, records: list) -> None:
    store = PairStore(conn, store_ticks=False)
    state = {"bench": True}
    for i in range(0, len(records), BATCH):
        out = EngineOutput()
        chunk = records[i : i + BATCH]
        if table == "bars":
            out.bars = chunk
        else:
            out.metrics, out.metric_ids = chunk, [f"{j + 1}-0" for j in range(i, i + len(chunk))]
        store.write(PairBatch("bench~pair", 0, out, state, [None, None]))


def write_executemany(conn: psycopg.Connection, table: str, records: list) -> None:
    cols, _, to_row = TABLES[table]
    sql = _upsert_sql(table, "(" + ", ".join(["%s"] * len(cols)) + ")")
    for i in range(0, len(records), BATCH):
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, [to_row(r) for r in records[i : i + BATCH]])


def write_values(conn: psycopg.Connection, table: str, records: list) -> None:
    cols, _, to_row = TABLES[table]
    row = "(" + ", ".join(["%s"] * len(cols)) + ")"
    for i in range(0, len(records), BATCH):
        chunk = records[i : i + BATCH]
        params = [v for r in chunk for v in to_row(r)]
        with conn.transaction():
            conn.execute(_upsert_sql(table, ", ".join([row] * len(chunk))), params)


WRITERS: dict[str, Callable[[psycopg.Connection, str, list], None]] = {
    "COPY + upsert (PairStore.write)": write_copy,
    "executemany upserts": write_executemany,
    "multi-row VALUES upsert": write_values,
}


@dataclass
class WriteRow:
    table: str
    path: str
    rows: int
    insert_s: float
    update_s: float


def bench_writes(dsn: str, n_bars: int, n_metrics: int) -> list[WriteRow]:
    data = {"bars": make_bars(n_bars), "pair_metrics": make_metrics(n_metrics)}
    out = []
    for table, records in data.items():
        for path, writer in WRITERS.items():
            truncate_all(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO pair_state (pair, fence) VALUES ('bench~pair', 0)")
                started = time.perf_counter()
                writer(conn, table, records)
                insert_s = time.perf_counter() - started
                started = time.perf_counter()
                writer(conn, table, records)  # the same keys again: every row is an upsert conflict
                update_s = time.perf_counter() - started
                (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if count != len(records):
                raise RuntimeError(f"{path}: {count} rows in {table}, expected {len(records)}")
            out.append(WriteRow(table, path, len(records), insert_s, update_s))
    return out


_RANGE = ("SELECT ts, open, high, low, close, volume, buy_volume, trades FROM bars "
          "WHERE instrument = %(i)s AND timeframe = %(tf)s AND ts >= %(a)s AND ts < %(b)s ORDER BY ts")  # fmt: skip
_DOWNSAMPLED = (
    "SELECT min(ts), (array_agg(open ORDER BY ts))[1], max(high), min(low), (array_agg(close ORDER BY ts DESC))[1], "
    "sum(volume) FROM bars WHERE instrument = %(i)s AND timeframe = %(tf)s AND ts >= %(a)s AND ts < %(b)s "
    "GROUP BY floor(extract(epoch FROM ts) / %(w)s) ORDER BY 1"
)


@dataclass
class QueryRow:
    name: str
    query: str
    rows: int
    best_ms: float
    median_ms: float


def _load_bars(conn: psycopg.Connection, bars: list[Bar]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY bars ({', '.join(BAR_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "timestamptz", "float8", "float8", "float8", "float8", "float8", "float8",
                        "int4"])  # fmt: skip
        for b in bars:
            copy.write_row(_bar_row(b))


def bench_queries(dsn: str, seconds_1s: int, days_1m: int, repeats: int) -> list[QueryRow]:
    truncate_all(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        _load_bars(conn, make_bars(seconds_1s * INSTRUMENTS, "1s", 1_000_000))
        _load_bars(conn, make_bars(days_1m * 1440 * INSTRUMENTS, "1m", 60_000_000))
        conn.execute("VACUUM ANALYZE bars")
        span_1s = "1 day" if seconds_1s == 86_400 else f"{seconds_1s / 3600:g} h"
        cases = [(f"{span_1s} of 1s bars", "1s", seconds_1s * 1_000_000),
                 (f"{days_1m} day(s) of 1m bars", "1m", days_1m * 86_400_000_000)]  # fmt: skip
        out = []
        for name, tf, span_us in cases:
            params = {"i": "binance-spot.B1USDT", "tf": tf, "a": us_to_datetime(T0_US),
                      "b": us_to_datetime(T0_US + span_us), "w": span_us / 1e6 / 1000}  # fmt: skip
            for label, sql in (("full range", _RANGE), ("downsampled to ~1 000", _DOWNSAMPLED)):
                times, n = [], 0
                for _ in range(repeats):
                    started = time.perf_counter()
                    n = len(conn.execute(sql, params).fetchall())
                    times.append((time.perf_counter() - started) * 1000)
                out.append(QueryRow(name, label, n, min(times), float(np.median(times))))
    return out


def tables(writes: list[WriteRow], queries: list[QueryRow]) -> str:
    lines = ["| table | write path | rows | insert rows/s | upsert-over rows/s | vs executemany (insert) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for w in writes:
        base = next(x for x in writes if x.table == w.table and x.path.startswith("executemany"))
        lines.append(f"| {w.table} | {w.path} | {w.rows:,} | {w.rows / w.insert_s:,.0f} | {w.rows / w.update_s:,.0f} "
                     f"| {base.insert_s / w.insert_s:.2f}x |")  # fmt: skip
    lines += ["", f"Batches of {BATCH:,} rows, one transaction each. 'upsert-over': the same rows written again "
              "(every row conflicts and is updated), as after a redelivery.", "",
              "| data | query | rows returned | best ms | median ms | vs full range (median) |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for q in queries:
        full = next(x for x in queries if x.name == q.name and x.query == "full range")
        lines.append(f"| {q.name} | {q.query} | {q.rows:,} | {fmt(q.best_ms)} | {fmt(q.median_ms)} "
                     f"| {full.median_ms / q.median_ms:.2f}x |")  # fmt: skip
    lines += ["", f"Bars table holds both sets for {INSTRUMENTS} instruments (plain PostgreSQL, no TimescaleDB); "
              "one instrument queried; times include fetching every row into Python (psycopg 3)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_storage", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--bars", type=int, default=50_000)
    ap.add_argument("--metrics", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    seconds_1s, days_1m = 86_400, 30
    if args.quick:
        args.bars, args.metrics, args.repeats, seconds_1s, days_1m = 2_000, 1_000, 2, 3_600, 1
    with bench_database(tag="bench") as dsn:
        writes = bench_writes(dsn, args.bars, args.metrics)
        queries = bench_queries(dsn, seconds_1s, days_1m, args.repeats)
    print(tables(writes, queries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
