"""`pairs api`: serve the gateway with uvicorn."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.logs import setup


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pairs api", description=__doc__)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--check", action="store_true", help="exit 0 if the gateway answers /health")
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = ApiSettings(**overrides)
    if args.check:
        import httpx

        try:
            ok = httpx.get(f"http://{settings.host}:{settings.port}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            ok = False
        return 0 if ok else 1
    setup("api", settings.log_level, settings.log_json)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
