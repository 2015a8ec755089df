"""PostgreSQL connections (psycopg 3). Every query is parameterized."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from shared.config import CommonSettings


def connect(settings: CommonSettings, *, autocommit: bool = False, dsn: str | None = None) -> psycopg.Connection:
    return psycopg.connect(
        dsn or settings.database_dsn,
        autocommit=autocommit,
        connect_timeout=int(settings.db_connect_timeout_s),
        application_name="pairs",
    )


def connect_dict(settings: CommonSettings) -> psycopg.Connection:
    return psycopg.connect(
        settings.database_dsn,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=int(settings.db_connect_timeout_s),
        application_name="pairs",
    )


def timescale_available(conn: psycopg.Connection) -> bool:
    """True when the server can load the timescaledb extension (it may not be created yet)."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def timescale_enabled(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None
