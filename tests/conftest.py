"""Shared fixtures: a database per test run (created, migrated, dropped) and a Redis key prefix per test.

Requires Redis on REDIS_URL (default 127.0.0.1:6379) and PostgreSQL on TEST_PG_ADMIN_URL
(default postgresql://postgres@127.0.0.1:5432/postgres). Nothing is left behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from shared.config import CommonSettings, data_dir_or_none
from shared.db import migrate

ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
RUN_ID = uuid.uuid4().hex[:10]


def _db_url(name: str) -> str:
    base, _ = ADMIN_URL.rsplit("/", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test run; dropped at the end."""
    name = f"pairs_test_{RUN_ID}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _db_url(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the run's database with every data table emptied first."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        yield conn


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A Redis namespace for one test; every key under it is deleted afterwards."""
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


@pytest.fixture
def settings(database_url: str, key_prefix: str) -> CommonSettings:
    return CommonSettings(
        REDIS_URL=REDIS_URL, DATABASE_URL=database_url, PAIRS_KEY_PREFIX=key_prefix, LOG_JSON=False
    )


@pytest.fixture
def redis_client(settings: CommonSettings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (or PAIRS_DATA_DIR); tests needing it skip with the reason when absent."""
    path = data_dir_or_none()
    if path is None:
        pytest.skip("recorded Binance data not found: set PAIRS_DATA_DIR or place ../shared/data beside the repo")
    return path


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_keys() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(REDIS_URL)
    leftovers = list(client.scan_iter(match=f"test:{RUN_ID}:*", count=1000))
    if leftovers:
        client.delete(*leftovers)
    client.close()
