"""`pairs migrate`: create the database if missing, apply migrations, then TimescaleDB policies if available."""

from __future__ import annotations

import argparse
import logging
import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.config import CommonSettings
from shared.db import migrate
from shared.db.connection import connect
from shared.db.timescale import apply_timescale_policies
from shared.logs import setup

log = logging.getLogger(__name__)


def ensure_database(dsn: str) -> bool:
    """Create the target database when the server has none of that name. Returns True if created."""
    params = conninfo_to_dict(dsn)
    name = params.get("dbname") or "postgres"
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
        return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log.info("created database %s", name)
    return True


def run(settings: CommonSettings) -> list[str]:
    """Bring the database to head; returns the TimescaleDB statements applied (empty on plain PostgreSQL)."""
    ensure_database(settings.database_dsn)
    migrate.upgrade(settings.database_dsn)
    with connect(settings, autocommit=True) as conn:
        return apply_timescale_policies(conn, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pairs migrate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 0 only if migrations are at head")
    args = parser.parse_args(argv)
    settings = CommonSettings()
    setup("migrate", settings.log_level, settings.log_json)
    try:
        if args.check:
            return 0 if migrate.at_head(settings.database_dsn) else 1
        applied = run(settings)
    except (psycopg.Error, OSError) as exc:
        print(f"pairs migrate: {exc}", file=sys.stderr)
        return 1
    print(f"database at {migrate.head_revision()}; timescale statements applied: {len(applied)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
