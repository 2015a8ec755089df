"""Gateway throughput and live fan-out against a real uvicorn server (a subprocess) on loopback.

HTTP: ``concurrency`` httpx clients hammer each endpoint for ``seconds``: ``/health`` (framework
baseline), ``/api/v1/snapshot`` (latest metric of every pair) and ``/api/v1/bars`` returning 1 000
points; requests/s, p50/p99 latency and the ratio to the baseline are printed side by side.

WebSocket: ``clients`` connections subscribe to one pair's metric stream; metrics are XADDed at a
paced rate with their compute time set to the publish time, and each client measures publish ->
receive. A single-client run is measured in the same invocation as the reference for the ratio.

    python -m bench.bench_api            # 50 concurrent HTTP clients x 10 s, 200 WebSocket clients
    python -m bench.bench_api --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import redis
import websockets

from bench._util import REDIS_URL, bench_database, delete_prefix, machine_cpu_busy, percentile, proc_sample
from shared.messages import Metric, to_fields
from shared.streams import Keys
from shared.timeutil import now_us

INSTRUMENT = "sim.BTCUSDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _seed(dsn: str, pairs: int, bars: int) -> None:
    """``bars`` 1m bars of INSTRUMENT and, per pair, two timeframes with 100 metric rows each."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY bars (instrument, timeframe, ts, open, high, low, close, volume, buy_volume, trades) "
                      "FROM STDIN") as copy:  # fmt: skip
            for i in range(bars):
                p = 40_000 + (i % 500)
                copy.write_row((INSTRUMENT, "1m", T0 + timedelta(minutes=i), p, p + 5, p - 5, p + 1, 3.5, 1.5, 42))
        for k in range(pairs):
            y, x = f"sim.Y{k:03d}", f"sim.X{k:03d}"
            cur.execute("INSERT INTO instruments (id, venue, symbol) VALUES (%s, 'sim', %s), (%s, 'sim', %s)",
                        (y, y[4:], x, x[4:]))  # fmt: skip
            cur.execute('INSERT INTO pairs (id, y, x, "window", timeframes) VALUES (%s, %s, %s, 60, %s)',
                        (f"{y}~{x}", y, x, ["1s", "1m"]))  # fmt: skip
        with cur.copy('COPY pair_metrics (pair, timeframe, ts, seq, method, "window", y_price, x_price, warm, beta, '
                      "alpha, r2, spread, zscore, correlation, adf_stat, adf_p, half_life, computed_at) "
                      "FROM STDIN") as copy:  # fmt: skip
            for k in range(pairs):
                for tf in ("1s", "1m"):
                    for i in range(100):
                        copy.write_row((f"sim.Y{k:03d}~sim.X{k:03d}", tf, T0 + timedelta(seconds=i), i, "ols", 60,
                                        100.0, 200.0, True, 0.5, 1.0, 0.9, 0.1, 1.2, 0.8, -3.1, 0.01, 12.0, T0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(dsn: str, prefix: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, REDIS_URL=REDIS_URL, DATABASE_URL=dsn, PAIRS_KEY_PREFIX=prefix, LOG_LEVEL="WARNING",
               LOG_JSON="false", API_DB_POOL_SIZE="16", API_LIVE_HEARTBEAT_S="0.5")  # fmt: skip
    log = tempfile.TemporaryFile()  # never a pipe: an unread pipe would block the server once full
    proc = subprocess.Popen([sys.executable, "-m", "services.api", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    log.seek(0)
    raise RuntimeError(f"gateway did not start: {log.read().decode(errors='replace')[-2000:]}")


async def _load(base: str, path: str, params: dict, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await client.get(path, params=params)  # warm the route and the pool
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await client.get(path, params=params)
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3}


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


async def _load_wrk(base: str, path: str, params: dict, concurrency: int, seconds: float) -> dict:
    """The same measurement with ``wrk`` (C, two threads): the load generator costs far less CPU than httpx."""
    url = str(httpx.URL(base + path, params=params))
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out = (await proc.communicate())[0].decode()
    pct = {q: float(v) * _WRK_UNITS[u] for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_ok = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if not (total and rps and "50" in pct and "99" in pct):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {"requests": int(total.group(1)), "errors": int(non_ok.group(1)) if non_ok else 0,
            "rps": float(rps.group(1)), "p50_ms": pct["50"], "p99_ms": pct["99"]}


async def _fanout(address: str, r: redis.Redis, keys: Keys, clients: int, metrics: int, rate: float) -> dict:
    pair = "sim.Y000~sim.X000"
    url = f"ws://{address}/api/v1/live/ws?pairs={pair}"
    conns = [await websockets.connect(url, max_queue=None) for _ in range(clients)]
    latencies: list[float] = []
    received = [0] * clients
    for ws in conns:  # a heartbeat means the relay holds its start position: nothing published later is missed
        while orjson.loads(await ws.recv())["channel"] != "heartbeat":
            pass

    async def reader(i: int, ws) -> None:
        while received[i] < metrics:
            frame = orjson.loads(await ws.recv())
            if frame["channel"] == "metrics":
                latencies.append((now_us() - frame["data"]["ts_compute_us"]) / 1e3)
                received[i] += 1

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(conns)]
    for seq in range(metrics):
        m = Metric(pair=pair, timeframe="1s", ts_event_us=now_us(), seq=seq, method="ols", window=60, y_price=1.0,
                   x_price=2.0, warm=False, ts_compute_us=now_us())  # fmt: skip
        r.xadd(keys.metrics(pair), to_fields(m))
        await asyncio.sleep(1 / rate)
    try:
        await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
    except TimeoutError:
        for t in readers:
            t.cancel()
    for ws in conns:
        await ws.close()
    return {"clients": clients, "expected": clients * metrics, "delivered": sum(received),
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def _measured(server_pid: int, phase) -> dict:
    """Run one phase; add the gateway's CPU share and the machine's busy share over it (2-core box, shared)."""
    before, (busy0, total0), t0 = proc_sample(server_pid), machine_cpu_busy(), time.perf_counter()
    result = asyncio.run(phase)
    after, (busy1, total1), wall = proc_sample(server_pid), machine_cpu_busy(), time.perf_counter() - t0
    result["server_cpu"] = (after.cpu_s - before.cpu_s) / wall if before and after else float("nan")
    result["machine_busy"] = (busy1 - busy0) / max(1, total1 - total0)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_api", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--ws-clients", type=int, default=200)
    p.add_argument("--metrics", type=int, default=100, help="metrics published during the fan-out run")
    p.add_argument("--load", choices=("auto", "wrk", "httpx"), default="auto",
                   help="HTTP load generator (auto: wrk when installed, else httpx)")
    p.add_argument("--key-prefix", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.concurrency, args.seconds, args.ws_clients, args.metrics = 5, 0.5, 10, 10
    loader = ("wrk" if shutil.which("wrk") else "httpx") if args.load == "auto" else args.load
    prefix = args.key_prefix or f"bench:api:{uuid.uuid4().hex[:8]}:"
    r = redis.Redis.from_url(REDIS_URL)
    with bench_database(tag="api") as dsn:
        _seed(dsn, pairs=5 if args.quick else 50, bars=1000 if args.quick else 5000)
        port = _free_port()
        server = _start_server(dsn, prefix, port)
        try:
            base = f"http://127.0.0.1:{port}"
            cases = [("health (baseline)", "/health", {}),
                     ("snapshot", "/api/v1/snapshot", {}),
                     ("bars, 1 000 points", "/api/v1/bars", {"instrument": INSTRUMENT, "timeframe": "1m",
                                                             "limit": 1000, "max_points": 1000})]  # fmt: skip
            load = _load_wrk if loader == "wrk" else _load
            http = [(name, _measured(server.pid, load(base, path, params, args.concurrency, args.seconds)))
                    for name, path, params in cases]  # fmt: skip
            keys = Keys(prefix)
            one = _measured(server.pid, _fanout(f"127.0.0.1:{port}", r, keys, 1, args.metrics, 20.0))
            many = _measured(server.pid, _fanout(f"127.0.0.1:{port}", r, keys, args.ws_clients, args.metrics, 20.0))
        finally:
            server.terminate()
            server.wait(timeout=30)
            delete_prefix(r, prefix)
            r.close()
    base_rps = http[0][1]["rps"]
    print(f"## Gateway HTTP ({args.concurrency} concurrent clients, {args.seconds:g} s each, {loader}, "
          "uvicorn 1 process)\n")
    print("| endpoint | requests | errors | req/s | p50 ms | p99 ms | req/s vs baseline | gateway CPU | machine busy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, res in http:
        print(f"| {name} | {res['requests']:,} | {res['errors']} | {res['rps']:,.0f} | {res['p50_ms']:.2f} | "
              f"{res['p99_ms']:.2f} | {res['rps'] / base_rps:.2f} | {res['server_cpu']:.0%} | {res['machine_busy']:.0%} |")
    print(f"\n## WebSocket fan-out ({args.metrics} metrics at 20/s, publish -> receive)\n")
    print("| clients | delivered / expected | p50 ms | p99 ms | p99 vs 1 client | gateway CPU | machine busy |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for res in (one, many):
        print(f"| {res['clients']} | {res['delivered']:,} / {res['expected']:,} | {res['p50_ms']:.2f} | "
              f"{res['p99_ms']:.2f} | {res['p99_ms'] / one['p99_ms']:.2f} | {res['server_cpu']:.0%} | "
              f"{res['machine_busy']:.0%} |")
    print("\ngateway CPU: the uvicorn process's CPU time / wall time (100% = one core); machine busy: all "
          "processes on the box, load generator included.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
