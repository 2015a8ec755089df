"""`pairs dashboard`: serve the Dash front end (it reads the gateway only)."""

from __future__ import annotations

import argparse
import logging
import sys

import httpx

from services.dashboard.settings import DashboardSettings
from shared.logs import setup

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pairs dashboard", description=__doc__)
    p.add_argument("--host", help="listen address (DASHBOARD_HOST)")
    p.add_argument("--port", type=int, help="listen port (DASHBOARD_PORT)")
    p.add_argument("--gateway", help="gateway base URL (DASHBOARD_GATEWAY_URL)")
    p.add_argument("--check", action="store_true",
                   help="exit 0 if a dashboard answers on host:port and it reaches the gateway")
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("gateway_url", args.gateway))
                 if v is not None}
    try:
        settings = DashboardSettings(**overrides)
    except ValueError as exc:
        print(f"pairs dashboard: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return _check(settings)
    setup("dashboard", settings.log_level, settings.log_json)
    from services.dashboard.app import create_app  # Dash is imported only when serving

    app = create_app(settings)
    log.info("dashboard on http://%s:%s reading %s", settings.host, settings.port, settings.gateway_url)
    app.run(host=settings.host, port=settings.port, debug=settings.debug, threaded=True)
    return 0


def _check(settings: DashboardSettings) -> int:
    url = f"http://{settings.host}:{settings.port}/health"
    try:
        body = httpx.get(url, timeout=settings.request_timeout_s).json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"dashboard not answering at {url}: {exc}", file=sys.stderr)
        return 1
    if body.get("gateway") != "ok":
        print(f"dashboard up, gateway not reachable: {body.get('gateway')}", file=sys.stderr)
        return 1
    print(f"dashboard ok at {url}; gateway ok; live relay {'on' if body.get('live_relay') else 'off'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
