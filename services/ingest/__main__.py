"""``pairs ingest``: feed ticks into the Redis tick streams from a replay, the simulator or Binance.

    pairs ingest --replay FILE [FILE ...] [--speed max|1|10] [--venue V] [--symbol S] [--no-progress]
    pairs ingest --simulate [--duration S] [--speed 1|max] [--history S]
    pairs ingest --live ...            (services/ingest/live)
    pairs ingest --check [--instance NAME]    exit 0 while the instance's heartbeat key exists

SIGINT/SIGTERM stop reading, flush what is queued to Redis and exit 0 (a second signal exits at
once). The run's summary is printed to stdout as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

import orjson
from redis.exceptions import RedisError

from shared import logs
from shared.errors import ConfigError, InvalidInput
from shared.observability import ServiceMetrics, start_metrics_server
from shared.redis_client import connect, connect_async

from .files import FILE_FORMATS
from .heartbeat import Heartbeat, read_heartbeat
from .modes import MODES, IngestContext, Runner, add_mode_arguments, resolve
from .normalize import BINANCE_VENUES
from .publisher import TickPublisher
from .settings import IngestSettings

log = logging.getLogger("services.ingest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pairs ingest", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--replay", nargs="+", metavar="FILE", help="replay trade dumps / recorded frames")
    mode.add_argument("--simulate", action="store_true", help="publish the seeded simulated feed")
    mode.add_argument("--live", action="store_true", help="stream from Binance (services/ingest/live)")
    mode.add_argument("--check", action="store_true", help="exit 0 if this instance's heartbeat is fresh")
    parser.add_argument("--speed", default=None, help="'max' (replay default), 1 = real time (simulate default), N = N times faster")
    parser.add_argument("--venue", choices=BINANCE_VENUES, help="venue of the replay files (else from the path)")
    parser.add_argument("--symbol", help="symbol of dump files whose name does not carry it")
    parser.add_argument("--format", choices=FILE_FORMATS, help="replay file layout (else sniffed)")
    parser.add_argument("--duration", type=float, help="simulated seconds of event time (default: forever)")
    parser.add_argument(
        "--history", type=float, help="simulate: first publish this many seconds of past ticks at once, then run live"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--instance", help="heartbeat instance name (default INGEST_INSTANCE or the host name)")
    add_mode_arguments(parser)
    return parser


def check(settings: IngestSettings) -> int:
    client = connect(settings)
    try:
        beat = read_heartbeat(client, settings.keys, settings.instance)
    except RedisError as exc:
        print(f"ingest {settings.instance}: redis unreachable: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if beat is None:
        print(f"ingest {settings.instance}: no heartbeat", file=sys.stderr)
        return 1
    if beat.get("problems"):  # a mode reporting unhealthy parts (live: streams silent/disconnected too long)
        print(f"ingest {settings.instance}: unhealthy: {'; '.join(map(str, beat['problems']))}", file=sys.stderr)
        return 1
    print(orjson.dumps(beat).decode())
    return 0


def _publisher_counters(publisher: TickPublisher) -> dict:
    s = publisher.stats()
    return {
        "published": s.published, "dropped_overflow": s.dropped_overflow, "rejected": s.rejected,
        "batches": s.batches, "redis_errors": s.redis_errors, "queued": s.queued,
        "latency_p99_us": s.latency_p99_us,
    }  # fmt: skip


async def serve(settings: IngestSettings, mode: str, runner: Runner, args: argparse.Namespace) -> int:
    client = connect_async(settings)
    metrics = ServiceMetrics.create()
    metrics_server = start_metrics_server(settings.metrics_port, metrics.registry) if settings.metrics_port else None
    publisher = TickPublisher(
        client, settings.keys, queue_size=settings.queue_size, batch_size=settings.batch_size,
        retention_s=settings.tick_retention_s, metrics=metrics,
    )  # fmt: skip
    stop = asyncio.Event()
    ctx = IngestContext(settings=settings, redis=client, publisher=publisher, stop=stop)
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    forced = False

    def on_signal(signum: int) -> None:
        nonlocal forced
        if stop.is_set() and main_task is not None:
            log.warning("second %s: exiting without flushing", signal.Signals(signum).name)
            forced = True
            main_task.cancel()
            return
        log.info("%s: stopping, flushing queued ticks", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    heartbeat = Heartbeat(
        client, settings.keys, settings.instance, mode=mode, interval_s=settings.heartbeat_interval_s,
        counters=lambda: {**_publisher_counters(publisher), **{k: v for k, v in ctx.counters.items() if k != "summary"}},
    )  # fmt: skip
    publisher.start()
    beat_stop = asyncio.Event()
    beat_task = asyncio.create_task(heartbeat.run(beat_stop), name="ingest-heartbeat")
    code = 0
    try:
        code = await runner(ctx, args)
    except (InvalidInput, ConfigError) as exc:
        log.error("%s", exc)
        code = 2
    finally:
        try:
            await publisher.close(timeout=0 if forced else settings.shutdown_grace_s)
        except TimeoutError:
            log.error("could not flush %d queued ticks within %.0fs", publisher.queued, settings.shutdown_grace_s)
            code = code or 1
        beat_stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await beat_task
        await heartbeat.clear()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await client.aclose()
        if metrics_server is not None:
            metrics_server.shutdown()
    out = {"mode": mode, **_publisher_counters(publisher), **ctx.counters}
    print(orjson.dumps(out, default=str).decode())
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = IngestSettings()
    if args.instance:
        settings = settings.model_copy(update={"instance": args.instance})
    logs.setup("ingest", settings.log_level, settings.log_json)
    if args.check:
        return check(settings)
    mode = next(m for m in MODES if getattr(args, m, None))
    try:
        runner = resolve(mode)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        return asyncio.run(serve(settings, mode, runner, args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


if __name__ == "__main__":
    sys.exit(main())
