"""Live ingest throughput: local Binance-compatible server at full speed -> one ingest process -> Redis.

The fake exchange (tests/fakebinance) runs in its own process and streams recorded Binance trade
frames (the hftbacktest captures, tiled with shifted ids to reach the requested size; generated
frames when ../shared/data is absent) as fast as its sockets take them: spot BTCUSDT/ETHUSDT on one
combined socket, USD-M BTCUSDT/ETHUSDT on the ``/public`` route. Measured side by side, in one run:

* ``raw socket``: a reader that only counts frames (the transport ceiling on this machine);
* ``live ingest (packed)``: the real ``LiveIngest`` (parse, id sequencing, publisher queue,
  pipelined ``XADD``) with the publisher's packed writer;
* ``live ingest (redis-py)``: the same with redis-py's pipeline writer.

Every ingest run is checked: Redis must hold exactly the server's trade ids, once each, in order.
Latency is receive (``ts_ingest_us``, stamped when the frame is read) -> ``XADD`` acknowledged.

    python -m bench.bench_ingest_live            # ~100 000 frames per stream
    python -m bench.bench_ingest_live --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson
import redis
from websockets.asyncio.client import connect

from services.ingest.live.runner import LiveIngest
from services.ingest.live.settings import LiveSettings
from services.ingest.publisher import TickPublisher
from shared.config import data_dir_or_none
from shared.redis_client import connect_async

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET_TICKS_PER_S = 50_000


@dataclass
class Result:
    name: str
    frames: int
    seconds: float
    p50_us: float | None = None
    p99_us: float | None = None
    exact: bool | None = None
    cpu_s: float = 0.0  # CPU time of the measuring (client) process over the run
    source: str = ""

    @property
    def cpu_us_per_tick(self) -> float:
        return self.cpu_s / self.frames * 1e6 if self.frames else 0.0

    @property
    def rate(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# -- the server process -----------------------------------------------------------------------------------


def _server_main(frames_per_stream: int, conn: Connection) -> None:
    from tests.fakebinance import FakeBinance, generated_tapes, recorded_capture_tapes, tile
    from tests.fakebinance.tapes import recorded_sample_tapes

    root = data_dir_or_none()
    tapes: list = []
    if root is not None and frames_per_stream <= 5_000:  # smoke runs: the small samples load at once
        tapes = [t for t in recorded_sample_tapes(root / "binance" / "ws") if t.kind == "trade"]
        source = "recorded JSONL samples (tiled)"
    elif root is not None:
        tapes = recorded_capture_tapes(root / "binance" / "ws")
        source = "recorded hftbacktest captures"
    if not tapes:
        tapes = [t for t in generated_tapes(duration_s=600.0, kinds=("trade",)) if t.kind == "trade"]
        source = "generated frames (no ../shared/data)"
    sized = []
    for tape in tapes:
        copies = max(1, -(-frames_per_stream // len(tape.payloads)))
        big = tile(tape, copies) if copies > 1 else tape
        big.payloads, big.frames = big.payloads[:frames_per_stream], big.frames[:frames_per_stream]
        sized.append(big)
    with FakeBinance(sized) as fb:
        conn.send({"urls": fb.live_settings(), "source": source,
                   "streams": [(t.venue, t.symbol, t.stream, t.first_id, t.trade_id(len(t.payloads) - 1))
                               for t in sized]})
        while True:
            cmd = conn.recv()
            if isinstance(cmd, tuple) and cmd[0] == "play":
                fb.play(cmd[1])
            elif cmd == "wait":
                fb.wait_finished(600)
                conn.send("finished")
            elif cmd == "stop":
                return


class ServerProcess:
    def __init__(self, frames_per_stream: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_server_main, args=(frames_per_stream, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(120):
            raise RuntimeError("fake binance process did not start")
        self.info: dict[str, Any] = self.conn.recv()

    def send(self, cmd: str | tuple[str, float | None]) -> None:
        self.conn.send(cmd)

    def close(self) -> None:
        try:
            self.conn.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# -- measured runs ----------------------------------------------------------------------------------------


def _instruments(info: dict[str, Any]) -> list[str]:
    return [f"{venue}.{symbol}" for venue, symbol, *_ in info["streams"]]


async def _raw_socket_run(frames_per_stream: int) -> Result:
    server = ServerProcess(frames_per_stream)
    try:
        info = server.info
        urls = info["urls"]
        total = sum(last - first + 1 for *_, first, last in info["streams"])
        spot = "/".join(s for v, _, s, *_ in info["streams"] if v == "binance-spot")
        usdm = "/".join(s for v, _, s, *_ in info["streams"] if v == "binance-usdm")
        targets = [f"{urls['spot_ws_base_url']}/stream?streams={spot}"] if spot else []
        targets += [f"{urls['usdm_ws_base_url']}/public/stream?streams={usdm}"] if usdm else []
        counts = [0] * len(targets)
        done = asyncio.Event()

        async def read(i: int, url: str) -> None:
            async with connect(url, ping_interval=None, compression=None, max_size=1 << 20) as ws:
                async for _ in ws:
                    counts[i] += 1
                    if sum(counts) >= total:
                        done.set()

        readers = [asyncio.create_task(read(i, u)) for i, u in enumerate(targets)]
        await asyncio.sleep(0.3)
        t0, c0 = time.perf_counter(), time.process_time()
        server.send(("play", None))
        await asyncio.wait_for(done.wait(), 600)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return Result("raw socket (count only)", sum(counts), seconds, cpu_s=cpu, source=info["source"])
    finally:
        server.close()


async def _ingest_run(frames_per_stream: int, write_mode: str, rate_per_stream: float | None = None) -> Result:
    server = ServerProcess(frames_per_stream)
    prefix = f"bench:live:{uuid.uuid4().hex[:8]}:"
    sync = redis.Redis.from_url(REDIS_URL)
    try:
        info = server.info
        cfg = LiveSettings(REDIS_URL=REDIS_URL, PAIRS_KEY_PREFIX=prefix, LOG_JSON=False,
                           instruments=_instruments(info), default_stream_kind="trade", seed_lookback_s=0,
                           watchdog_silence_s=600, status_interval_s=1.0, queue_size=500_000, batch_size=2000,
                           **info["urls"])
        client = connect_async(cfg)
        publisher = TickPublisher(client, cfg.keys, queue_size=cfg.queue_size, batch_size=cfg.batch_size,
                                  write_mode=write_mode)  # type: ignore[arg-type]
        ingest = LiveIngest(cfg, client, publisher)
        stop = asyncio.Event()
        writer = publisher.start()
        task = asyncio.create_task(ingest.run(stop))
        deadline = time.monotonic() + 30
        while not all(s.current for s in ingest.slots):
            if time.monotonic() > deadline:
                raise RuntimeError("ingest never connected to the fake server")
            await asyncio.sleep(0.02)
        last = {f"{v}.{sym}": last_id for v, sym, _, _, last_id in info["streams"]}
        t0, c0 = time.perf_counter(), time.process_time()
        server.send(("play", rate_per_stream))
        while any(ingest.sequencers[i].last_id != v for i, v in last.items()):
            if time.perf_counter() - t0 > 600:
                raise RuntimeError("not every trade was sequenced after 600 s")
            await asyncio.sleep(0.005)
        await publisher.flush(120)  # measured until the last tick is in Redis
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        stats = publisher.stats()
        stop.set()
        await task
        await publisher.close(timeout=30)
        await asyncio.gather(writer, return_exceptions=True)
        await client.aclose()
        exact = _check_exact(sync, cfg, info, last)
        label = write_mode if rate_per_stream is None else f"{write_mode}, paced {4 * rate_per_stream:,.0f}/s"
        return Result(f"live ingest ({label})", stats.published, seconds, stats.latency_p50_us,
                      stats.latency_p99_us, exact, cpu)
    finally:
        server.close()
        keys = list(sync.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            sync.delete(*keys)
        sync.close()


def _check_exact(client: redis.Redis, cfg: LiveSettings, info: dict[str, Any], last: dict[str, int]) -> bool:
    """Redis holds each server trade id exactly once, in order (ids parsed from the stored records)."""
    for venue, symbol, _, first, last_id in info["streams"]:
        key = cfg.keys.ticks(f"{venue}.{symbol}")
        ids = [orjson.loads(f[b"data"])["trade_id"] for _, f in client.xrange(key)]
        if ids != list(range(first, last_id + 1)):
            return False
    return True


def _table(results: list[Result], source: str, frames_per_stream: int) -> str:
    raw = next((r for r in results if r.name.startswith("raw")), None)
    lines = [
        f"Live ingest benchmark: {source}, {frames_per_stream:,} frames per stream, 4 trade streams, 2 sockets "
        f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)",
        "",
        "| run | ticks | seconds | ticks/s | vs raw socket | vs 50k target | client CPU us/tick "
        "| ticks/s per client CPU-second | p50 recv->XADD ms | p99 recv->XADD ms | exact |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        vs_raw = f"{r.rate / raw.rate:.2f}x" if raw and raw.rate else "-"
        p50 = f"{r.p50_us / 1000:.1f}" if r.p50_us is not None else "-"
        p99 = f"{r.p99_us / 1000:.1f}" if r.p99_us is not None else "-"
        exact = "-" if r.exact is None else ("yes" if r.exact else "NO")
        per_cpu = f"{1e6 / r.cpu_us_per_tick:,.0f}" if r.cpu_us_per_tick else "-"
        lines.append(f"| {r.name} | {r.frames:,} | {r.seconds:.2f} | {r.rate:,.0f} | {vs_raw} | "
                     f"{r.rate / TARGET_TICKS_PER_S:.2f}x | {r.cpu_us_per_tick:.1f} | {per_cpu} | {p50} | {p99} "
                     f"| {exact} |")
    return "\n".join(lines)


async def run(frames_per_stream: int) -> tuple[list[Result], str]:
    results = [await _raw_socket_run(frames_per_stream)]
    for mode in ("packed", "redis-py"):
        results.append(await _ingest_run(frames_per_stream, mode))
    # Latency without a backlog: the same path paced at a fifth of the full-speed rate, for ~4 s.
    rate = max(100.0, results[1].rate / 4 / 5)
    results.append(await _ingest_run(max(200, min(frames_per_stream, int(rate * 4))), "packed", rate))
    return results, results[0].source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ingest_live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (2 000 frames per stream)")
    parser.add_argument("--frames", type=int, default=100_000, help="frames per stream")
    args = parser.parse_args(argv)
    frames = 2_000 if args.quick else args.frames
    results, source = asyncio.run(run(frames))
    print(_table(results, source, frames))
    return 0 if all(r.exact is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
