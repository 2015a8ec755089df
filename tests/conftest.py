"""Shared fixtures: a database per test run (created, migrated, dropped) and a Redis key prefix per test.

Requires Redis on REDIS_URL (default 127.0.0.1:6379) and PostgreSQL on TEST_PG_ADMIN_URL
(default postgresql://postgres@127.0.0.1:5432/postgres). Nothing is left behind.

Where the servers come from (``resolve_endpoints``, once per run, before any test module imports
ADMIN_URL / REDIS_URL): an explicit environment variable wins; otherwise the local default is used
when it answers; otherwise, if a Docker engine is reachable, testcontainers starts Redis and the
TimescaleDB image (so the hypertable/compression/continuous-aggregate path runs for real on a
laptop). CI has no engine and uses the machine's servers.
"""

from __future__ import annotations

import atexit
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from shared.config import CommonSettings, data_dir_or_none
from shared.testing.databases import temporary_database

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The images docker-compose.yml runs (tests/deploy checks they stay equal).
TESTCONTAINERS_REDIS_IMAGE = "redis:7.4.1-bookworm"
TESTCONTAINERS_TIMESCALE_IMAGE = "timescale/timescaledb:2.17.2-pg16"


@dataclass
class ServiceEndpoints:
    """Where this run's Redis and PostgreSQL are, and how each was found."""

    admin_url: str
    redis_url: str
    sources: dict[str, str]  # "postgres"/"redis" -> "environment" | "local" | "testcontainers" | "unreachable"
    containers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        while self.containers:
            self.containers.pop().stop()


def tcp_reachable(url: str, default_port: int, timeout_s: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=timeout_s):
            return True
    except OSError:
        return False


def docker_engine_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no package, no socket, no permission: all mean "no engine"
        return False


def start_test_container(kind: str) -> tuple[str, Any]:
    """Start Redis or TimescaleDB with testcontainers; returns (url, container)."""
    if kind == "redis":
        from testcontainers.redis import RedisContainer

        container = RedisContainer(TESTCONTAINERS_REDIS_IMAGE).start()
        host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
        return f"redis://{host}:{port}/0", container
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        TESTCONTAINERS_TIMESCALE_IMAGE, username="postgres", password="postgres", dbname="postgres", driver=None
    ).start()
    return container.get_connection_url(), container


def resolve_endpoints(
    environ: Mapping[str, str] = os.environ,
    reachable: Callable[[str, int], bool] = tcp_reachable,
    engine: Callable[[], bool] = docker_engine_available,
    start: Callable[[str], tuple[str, Any]] = start_test_container,
) -> ServiceEndpoints:
    """Environment variable, else the local default if it answers, else a testcontainer if Docker runs."""
    wanted = {
        "postgres": (environ.get("TEST_PG_ADMIN_URL"), DEFAULT_ADMIN_URL, 5432),
        "redis": (environ.get("TEST_REDIS_URL") or environ.get("REDIS_URL"), DEFAULT_REDIS_URL, 6379),
    }
    urls: dict[str, str] = {}
    sources: dict[str, str] = {}
    missing = []
    for kind, (configured, default, port) in wanted.items():
        if configured:
            urls[kind], sources[kind] = configured, "environment"
        elif reachable(default, port):
            urls[kind], sources[kind] = default, "local"
        else:
            urls[kind], sources[kind] = default, "unreachable"
            missing.append(kind)
    endpoints = ServiceEndpoints(urls["postgres"], urls["redis"], sources)
    if missing and engine():
        for kind in missing:
            urls[kind], container = start(kind)
            endpoints.containers.append(container)
            sources[kind] = "testcontainers"
        endpoints.admin_url, endpoints.redis_url = urls["postgres"], urls["redis"]
    elif missing:
        warnings.warn(f"no {' or '.join(missing)} reachable and no Docker engine: integration tests will fail",
                      stacklevel=2)
    return endpoints


# Resolved at import, so test modules that import ADMIN_URL / REDIS_URL get the final values.
ENDPOINTS = resolve_endpoints()
atexit.register(ENDPOINTS.stop)
ADMIN_URL = ENDPOINTS.admin_url
REDIS_URL = ENDPOINTS.redis_url
RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def service_endpoints() -> ServiceEndpoints:
    """The run's Redis and PostgreSQL (environment, local servers, or testcontainers)."""
    return ENDPOINTS



@pytest.fixture(scope="session")
def database_url(service_endpoints: ServiceEndpoints) -> Iterator[str]:
    """A fresh, migrated database for this test run; dropped at the end."""
    with temporary_database(service_endpoints.admin_url, f"pairs_test_{RUN_ID}") as url:
        yield url


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
def key_prefix(service_endpoints: ServiceEndpoints) -> Iterator[str]:
    """A Redis namespace for one test; every key under it is deleted afterwards."""
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(service_endpoints.redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


@pytest.fixture
def settings(database_url: str, key_prefix: str, service_endpoints: ServiceEndpoints) -> CommonSettings:
    return CommonSettings(
        REDIS_URL=service_endpoints.redis_url, DATABASE_URL=database_url, PAIRS_KEY_PREFIX=key_prefix, LOG_JSON=False
    )


@pytest.fixture
def redis_client(settings: CommonSettings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_dsn)
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
def _no_leftover_keys(service_endpoints: ServiceEndpoints) -> Iterator[None]:
    yield
    client = redis.Redis.from_url(service_endpoints.redis_url)
    leftovers = list(client.scan_iter(match=f"test:{RUN_ID}:*", count=1000))
    if leftovers:
        client.delete(*leftovers)
    client.close()
