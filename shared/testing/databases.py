"""Throwaway databases for tests and benchmarks: created, migrated to head, dropped afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg.conninfo import make_conninfo

from shared.db import migrate


@contextlib.contextmanager
def temporary_database(admin_url: str, name: str) -> Iterator[str]:
    """Create ``name`` through ``admin_url``, migrate it, yield its URL; drop it (even if in use) after."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _ = admin_url.rsplit("/", 1)
    url = f"{base}/{name}" if "://" in admin_url else make_conninfo(admin_url, dbname=name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
