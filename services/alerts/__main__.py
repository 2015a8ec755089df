"""`pairs alerts` / `python -m services.alerts`: run the alerts worker, or `--check` its heartbeat."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import redis

from services.alerts.service import AlertsWorker
from services.alerts.settings import AlertsSettings
from shared.logs import setup
from shared.redis_client import connect

log = logging.getLogger("services.alerts")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pairs alerts", description="Evaluate alert rules over the metric streams.")
    p.add_argument("--instance", help="consumer name (default: ALERTS_INSTANCE or the host name)")
    p.add_argument("--check", action="store_true", help="exit 0 if a live alerts heartbeat exists, else 1")
    p.add_argument("--prometheus-port", type=int, help="port for /metrics (0 disables; default ALERTS_PROMETHEUS_PORT)")
    return p


def check(settings: AlertsSettings, instance: str | None) -> int:
    client = connect(settings)
    try:
        if instance:
            alive = bool(client.exists(settings.keys.heartbeat("alerts", instance)))
        else:
            alive = any(True for _ in client.scan_iter(match=settings.keys.heartbeat_pattern("alerts"), count=1000))
    except redis.RedisError as exc:
        print(f"alerts: redis unreachable: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print("alerts: healthy" if alive else "alerts: no live heartbeat", file=sys.stderr)
    return 0 if alive else 1


async def _run(worker: AlertsWorker) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)  # stop reading, finish the batch, ack, close
    await worker.run()


def _event_loop_runner():
    """uvloop when installed (it comes with uvicorn[standard]): cheaper Redis/PostgreSQL round trips."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {}
    if args.instance:
        overrides["instance"] = args.instance
    if args.prometheus_port is not None:
        overrides["prometheus_port"] = args.prometheus_port
    settings = AlertsSettings(**overrides)
    setup("alerts", settings.log_level, settings.log_json)
    if args.check:
        return check(settings, args.instance)
    if settings.prometheus_port:
        from prometheus_client import start_http_server

        start_http_server(settings.prometheus_port, addr="0.0.0.0")
    log.info("alerts worker %s starting", settings.instance)
    try:
        _event_loop_runner()(_run(AlertsWorker(settings)))
    except Exception:
        log.exception("alerts worker crashed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
