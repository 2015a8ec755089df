"""Harness for the end-to-end pipeline benchmark: data files, service processes, progress, latency reader.

Every service runs as its real process (``python -m services.<svc>``), configured only through its
environment (a bench-only key prefix and a bench database), exactly as it would be deployed.
"""

from __future__ import annotations

import bisect
import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import orjson
import psycopg
import redis

from bench._util import (
    ProcSample,
    delete_prefix,
    postgres_backend_pids,
    proc_sample,
    redis_server_pid,
    truncate_all,
)
from services.analytics.store import register_pair
from shared.alerts.schemas import RuleIn, compile_rule
from shared.instruments import Pair
from shared.messages import AlertEvent, Metric, Tick
from shared.streams import Keys
from shared.testing.generator import CointegratedSpec, generate_ticks

VENUE = "binance-spot"
WINDOW = 300


@dataclass
class DataSet:
    name: str
    files: list[Path]
    pairs: list[Pair]
    venue: str | None  # None: taken from the file names (recorded frames)


def write_generated(folder: Path, tag: str, n_pairs: int, duration_s: float, rate: float, seed: int = 100) -> DataSet:
    """``n_pairs`` cointegrated generator pairs written as data.binance.vision trade dumps (µs times).

    Microsecond trade times (the 2025+ spot dump layout) keep ticks distinguishable by time, which
    the latency reader relies on to find the tick behind each metric.
    """
    files: list[Path] = []
    pairs: list[Pair] = []
    for k in range(n_pairs):
        y, x = f"{tag}{k}Y", f"{tag}{k}X"
        spec = CointegratedSpec(y_instrument=y, x_instrument=x, duration_s=duration_s, rate_x=rate, rate_y=rate,
                                seed=seed + k)  # fmt: skip
        rows: dict[str, list[str]] = {y: [], x: []}
        for t in generate_ticks(spec):
            maker = "True" if t.side == "sell" else "False"
            rows[t.instrument].append(
                f"{t.trade_id},{t.price!r},{t.qty!r},{t.price * t.qty:.8f},{t.ts_event_us},{maker},True")
        for symbol, lines in rows.items():
            path = folder / f"{symbol}-trades-2024-08-09.csv"
            path.write_text("\n".join(lines) + "\n")
            files.append(path)
        pairs.append(Pair.parse(f"{VENUE}.{y}~{VENUE}.{x}"))
    return DataSet(f"generated {n_pairs} pairs", files, pairs, VENUE)


def count_trades(path: Path) -> int:
    """Trade lines of a replay file: lines whose first cell is an integer (headers are not)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return sum(1 for line in f if line.split(b",", 1)[0].strip().isdigit())


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@dataclass
class ProcWatch:
    """Tracks CPU and peak RSS of named processes; a process that exits keeps its last sample."""

    pids: dict[str, int] = field(default_factory=dict)
    first: dict[str, tuple[float, ProcSample]] = field(default_factory=dict)
    last: dict[str, tuple[float, ProcSample]] = field(default_factory=dict)

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def sample(self) -> None:
        now = time.perf_counter()
        for name, pid in self.pids.items():
            s = proc_sample(pid)
            if s is not None:
                self.first.setdefault(name, (now, s))
                self.last[name] = (now, s)

    def reset(self) -> None:
        self.first, self.last = {}, {}
        self.sample()

    def cpu_percent(self, name: str) -> float:
        if name not in self.first or name not in self.last:
            return float("nan")
        (t0, a), (t1, b) = self.first[name], self.last[name]
        return 100.0 * (b.cpu_s - a.cpu_s) / (t1 - t0) if t1 > t0 else float("nan")

    def peak_rss_mb(self, name: str) -> float:
        return self.last[name][1].peak_rss_mb if name in self.last else float("nan")


class Pipeline:
    """One scenario: its own key prefix, a clean database, N analytics workers, ingest, optional alerts."""

    def __init__(self, dsn: str, redis_url: str, data: DataSet, *, workers: int, timeframes: list[str],
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.dsn, self.redis_url, self.data = dsn, redis_url, data
        self.n_workers, self.timeframes = workers, timeframes
        self.prefix = f"bench:pipe:{uuid.uuid4().hex[:8]}:"
        self.keys = Keys(self.prefix)
        self.client = redis.Redis.from_url(redis_url)
        self.logs = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.watch = ProcWatch()
        self.env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": dsn, "PAIRS_KEY_PREFIX": self.prefix,
                    "LOG_LEVEL": "WARNING", "LOG_JSON": "false",
                    "ALERTS_PROMETHEUS_PORT": "0", **(env or {})}  # fmt: skip
        self.tick_streams = [self.keys.ticks(i.id) for p in data.pairs for i in p.legs]
        self.published: int | None = None
        self.notes: list[str] = []  # anomalies seen while measuring (reported under the tables)

    # --- processes ------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], capture_stdout: bool = False) -> subprocess.Popen:
        # The child keeps its own copies of the descriptors: ours are closed as soon as it has started.
        with open(self.logs / f"{name}.err", "wb") as err, open(self.logs / f"{name}.out", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", *args], env=self.env, stderr=err,
                                    stdout=out if capture_stdout else subprocess.DEVNULL)  # fmt: skip
        self.procs[name] = proc
        self.watch.add(name, proc.pid)
        return proc

    def _check_alive(self, names: list[str]) -> None:
        for name in names:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {self.procs[name].returncode}: {_tail(self.logs / f'{name}.err')}")

    def prepare(self) -> None:
        truncate_all(self.dsn)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for pair in self.data.pairs:
                register_pair(conn, pair, window=WINDOW, timeframes=self.timeframes, method="ols")

    def start_workers(self, timeout_s: float = 90.0) -> None:
        names = [f"analytics-{i}" for i in range(self.n_workers)]
        for i, name in enumerate(names):
            self._spawn(name, ["services.analytics", "--auto", "--instance", f"bench-w{i}"])
        self._wait_balanced(names, timeout_s)
        pg = self.dsn.rsplit("/", 1)[1]
        for i, pid in enumerate(postgres_backend_pids(self.dsn, pg)):
            self.watch.add(f"postgres-{i}", pid)
        pid = redis_server_pid(self.client)
        if pid:
            self.watch.add("redis", pid)

    def _wait_balanced(self, names: list[str], timeout_s: float) -> None:
        """Every pair leased, shares within one of each other, groups created; stable for 1 s."""
        pairs = [p.id for p in self.data.pairs]
        lo = len(pairs) // self.n_workers
        deadline, since = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            self._check_alive(names)
            owners = self.client.mget([self.keys.lease(p) for p in pairs])
            counts: dict[bytes, int] = {}
            for owner in owners:
                if owner is not None:
                    counts[owner] = counts.get(owner, 0) + 1
            ok = (None not in owners and len(counts) == min(self.n_workers, len(pairs))
                  and all(lo <= c <= lo + 1 for c in counts.values()) and self._groups_ready())  # fmt: skip
            if ok:
                since = since or time.monotonic()
                if time.monotonic() - since >= 1.0:
                    return
            else:
                since = None
            time.sleep(0.2)
        raise RuntimeError(f"analytics workers did not balance {len(pairs)} pairs within {timeout_s:.0f} s")

    def _groups_ready(self) -> bool:
        pipe = self.client.pipeline(transaction=False)
        for stream in self.tick_streams:
            pipe.exists(stream)
        return all(pipe.execute())

    def start_alerts(self, timeout_s: float = 60.0) -> None:
        for pair in self.data.pairs:  # streams exist first, so the worker needs no discovery round
            key = self.keys.metrics(pair.id)
            self.client.xadd(key, {"data": b"{}"}, id="0-1")  # the lowest id: analytics' ids all follow it
            self.client.xtrim(key, maxlen=0)
        self._spawn("alerts", ["services.alerts", "--instance", "bench-alerts"])
        deadline = time.monotonic() + timeout_s
        while not self.client.exists(self.keys.heartbeat("alerts", "bench-alerts")):
            self._check_alive(["alerts"])
            if time.monotonic() > deadline:
                raise RuntimeError("the alerts worker did not start")
            time.sleep(0.2)

    def start_ingest(self, speed: str) -> None:
        args = ["services.ingest", "--replay", *map(str, self.data.files), "--speed", speed, "--no-progress",
                "--instance", "bench-ingest"]  # fmt: skip
        if self.data.venue:
            args += ["--venue", self.data.venue]
        self._spawn("ingest", args, capture_stdout=True)

    # --- progress -------------------------------------------------------------------------
    def processed(self) -> int:
        """Tick entries acknowledged by their pair's group (acked = committed to the database)."""
        pipe = self.client.pipeline(transaction=False)
        for stream in self.tick_streams:
            pipe.xinfo_groups(stream)
        done = 0
        for groups in pipe.execute(raise_on_error=False):
            if isinstance(groups, Exception):
                continue
            for g in groups:
                done += (g.get("entries-read") or 0) - g["pending"]
        return done

    def first_arrival(self, timeout_s: float = 120.0) -> float:
        """Wall time (epoch s) of the first tick XADD, from its Redis-assigned stream id."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pipe = self.client.pipeline(transaction=False)
            for stream in self.tick_streams:
                pipe.xrange(stream, count=1)
            firsts = [int(e[0][0].split(b"-")[0]) for e in pipe.execute() if e]
            if firsts:
                return min(firsts) / 1000
            self._check_alive(["ingest"])
            time.sleep(0.005)
        raise RuntimeError("ingest published nothing")

    def ingest_summary(self) -> dict:
        proc = self.procs["ingest"]
        if proc.poll() is None:
            raise RuntimeError("ingest still running")
        if proc.returncode != 0:
            raise RuntimeError(f"ingest exited with {proc.returncode}: {_tail(self.logs / 'ingest.err')}")
        lines = (self.logs / "ingest.out").read_bytes().strip().splitlines()
        return orjson.loads(lines[-1])

    def wait_processed(self, timeout_s: float, on_poll=None) -> tuple[float, float]:
        """Poll until every tick of the files is acked (the expected count comes from the files, so a
        replay that publishes everything but does not exit cannot stall the benchmark).

        Returns (wall time when the last tick was published, wall time when all were processed).
        """
        expected = sum(count_trades(f) for f in self.data.files)
        deadline = time.monotonic() + timeout_s
        last_mem = 0.0
        while time.monotonic() < deadline:
            done = self.processed()
            now = time.time()
            if time.monotonic() - last_mem > 0.25:
                self.watch.sample()
                last_mem = time.monotonic()
                if on_poll is not None:
                    on_poll(now, done)
            if done >= expected:
                self.watch.sample()
                self.published = expected
                self._check_ingest_exit(expected)
                return self._last_arrival(), now
            self._check_alive([n for n in self.procs if n != "ingest"])
            if self.procs["ingest"].poll() not in (None, 0):
                self.ingest_summary()  # raises with ingest's error output
            time.sleep(0.02)
        raise RuntimeError(f"pipeline did not finish within {timeout_s:.0f} s ({self.processed()} ticks processed)")

    def _check_ingest_exit(self, expected: int, grace_s: float = 15.0) -> None:
        """Ingest should exit by itself once it has published everything, and report the same count.

        A replay that hangs after publishing everything is noted (``self.notes``) and stopped: the
        measurement itself is complete by then.
        """
        try:
            self.procs["ingest"].wait(grace_s)
        except subprocess.TimeoutExpired:
            self.notes.append(f"ingest published all {expected:,} ticks but had not exited {grace_s:.0f} s later "
                              "(stopped with SIGTERM)")  # fmt: skip
            self.procs["ingest"].terminate()
            return
        published = int(self.ingest_summary()["published"])
        if published != expected:
            raise RuntimeError(f"ingest published {published} ticks, the files hold {expected}")

    def _last_arrival(self) -> float:
        pipe = self.client.pipeline(transaction=False)
        for stream in self.tick_streams:
            pipe.xrevrange(stream, count=1)
        lasts = [int(e[0][0].split(b"-")[0]) for e in pipe.execute() if e]
        return max(lasts) / 1000 if lasts else time.time()

    def row_counts(self) -> dict[str, int]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                    for t in ("ticks", "bars", "pair_metrics", "alert_events")}  # fmt: skip

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        delete_prefix(self.client, self.prefix)
        self.client.close()
        shutil.rmtree(self.logs, ignore_errors=True)


class LatencyReader(threading.Thread):
    """XREADs the tick, metric and alert streams and stamps each entry with its arrival (µs, wall clock).

    A metric of timeframe ``tick`` (and an alert on one) carries its tick's trade time, so its latency
    is its arrival minus the publication (``ts_ingest_us``) of the tick with that pair and trade time.
    That latency splits in two: the event-time merge's wait (until the other leg publishes a tick at
    or after this one's trade time, or the pair's merge grace has passed, whichever comes first: the
    earliest the worker may process it) and the rest.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(pipeline.redis_url)
        keys = pipeline.keys
        self.pair_of: dict[bytes, str] = {}
        self.kind: dict[bytes, str] = {}
        for pair in pipeline.data.pairs:
            for leg in pair.legs:
                self.pair_of[keys.ticks(leg.id).encode()] = pair.id
                self.kind[keys.ticks(leg.id).encode()] = "tick"
            self.kind[keys.metrics(pair.id).encode()] = "metric"
        self.kind[keys.alerts.encode()] = "alert"
        self.published: dict[tuple[str, int], int] = {}
        self.leg_ticks: dict[bytes, list[tuple[int, int]]] = {k: [] for k, v in self.kind.items() if v == "tick"}
        self.legs_of: dict[str, list[bytes]] = {}
        for key, pair_id in self.pair_of.items():
            self.legs_of.setdefault(pair_id, []).append(key)
        self.metrics: list[tuple[str, int, int]] = []  # (pair, ts_event_us, arrival µs)
        self.alerts: list[tuple[str, int, int]] = []
        self.stop_event = threading.Event()
        self._decoders = {"tick": msgspec.json.Decoder(Tick), "metric": msgspec.json.Decoder(Metric),
                          "alert": msgspec.json.Decoder(AlertEvent)}  # fmt: skip

    def run(self) -> None:
        last = {k: "0-0" for k in self.kind}
        while not self.stop_event.is_set():
            reply = self.client.xread(last, count=2000, block=50)
            arrival = time.time_ns() // 1000
            for key, entries in reply or []:
                kind = self.kind[key]
                decoder = self._decoders[kind]
                for entry_id, fields in entries:
                    last[key] = entry_id
                    raw = fields.get(b"data", b"")
                    if kind == "tick":
                        t = decoder.decode(raw)
                        k = (self.pair_of[key], t.ts_event_us)
                        self.published[k] = max(self.published.get(k, 0), t.ts_ingest_us)
                        self.leg_ticks[key].append((t.ts_event_us, t.ts_ingest_us))
                    elif kind == "metric" and raw != b"{}":
                        m = decoder.decode(raw)
                        if m.timeframe == "tick":
                            self.metrics.append((m.pair, m.ts_event_us, arrival))
                    elif kind == "alert":
                        a = decoder.decode(raw)
                        if a.timeframe == "tick":
                            self.alerts.append((a.pair, a.ts_event_us, arrival))
        self.client.close()

    def mergeable_at(self, grace_us: dict[str, int]) -> dict[tuple[str, int], int]:
        """{(pair, trade time): when the tick could first be merged (µs)}: its own publication plus
        the wait for the other leg's first tick at or after its trade time, at most the pair's grace."""
        ready: dict[tuple[str, int], int] = {}
        for pair_id, legs in self.legs_of.items():
            for own, other in ((legs[0], legs[1]), (legs[1], legs[0])):
                times = [ts for ts, _ in self.leg_ticks[other]]
                for ts, pub in self.leg_ticks[own]:
                    i = bisect.bisect_left(times, ts)
                    partner = self.leg_ticks[other][i][1] if i < len(times) else pub + grace_us[pair_id]
                    ready[(pair_id, ts)] = max(pub, min(partner, pub + grace_us[pair_id]))
        return ready

    def split_ms(self, seen: list[tuple[str, int, int]], grace_us: dict[str, int]) -> tuple[list[float], list[float]]:
        """(merge waits, latencies after the merge) in ms; ``grace_us``: each pair's merge grace."""
        ready = self.mergeable_at(grace_us)
        waits, after = [], []
        for pair, ts, arrival in seen:
            if (pair, ts) in ready and (pair, ts) in self.published:
                waits.append((ready[(pair, ts)] - self.published[(pair, ts)]) / 1000)
                after.append((arrival - ready[(pair, ts)]) / 1000)
        return waits, after

    def latencies_ms(self, seen: list[tuple[str, int, int]]) -> list[float]:
        return [(arrival - self.published[(pair, ts)]) / 1000 for pair, ts, arrival in seen
                if (pair, ts) in self.published]  # fmt: skip


def insert_rules(dsn: str, pairs: list[Pair], n_rules: int, timeframe: str) -> None:
    """``n_rules`` rules spread over the pairs, compiled as the api compiles them: half |z| conditions
    with a clear level (hysteresis), half entry/exit/stop signal rules."""
    rows = []
    for i in range(n_rules):
        pair = pairs[i % len(pairs)].id
        level = 2.0 + 0.1 * ((i // len(pairs)) % 5)
        if i % 2 == 0:
            body = RuleIn(name=f"z{i}", pair=pair, timeframe=timeframe, kind="condition",
                          condition=f"|z| > {level:.1f}", clear="|z| < 1")  # fmt: skip
        else:
            body = RuleIn(name=f"s{i}", pair=pair, timeframe=timeframe, kind="signal",
                          signal={"entry": level, "exit": 0.5, "stop": 6.0})  # fmt: skip
        rule = compile_rule(body)
        rows.append((rule.name, rule.pair, rule.timeframe, rule.kind, rule.expression,
                     orjson.dumps(rule.spec).decode(), rule.cooldown_s, rule.pending_n, rule.pending_s))  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alert_rules (name, pair, timeframe, kind, expression, spec, cooldown_s, pending_n, pending_s) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)  # fmt: skip
