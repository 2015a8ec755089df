"""Embedded Redis and PostgreSQL started for real from the packaged binaries (also as root here)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from services import localrun
from services.localrun import ensure_postgres, ensure_redis, free_port
from shared.errors import ConfigError
from tests.conftest import ADMIN_URL, REDIS_URL


def _closed_port() -> int:
    return free_port()  # bound then released: nothing listens there


@pytest.fixture(scope="module")
def run_dir() -> Iterator[Path]:
    """A data dir the unprivileged PostgreSQL user can traverse (pytest's tmp_path is 0700 under root).

    Shared by the module so the cluster is initialised once; each test stops what it starts."""
    path = Path(tempfile.mkdtemp(prefix="pairs-localrun-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_reachable_redis_is_used_as_is(run_dir: Path) -> None:
    server = ensure_redis(run_dir, url=REDIS_URL)
    assert server.embedded is False and server.url == REDIS_URL
    server.stop()  # a no-op for a server we did not start
    assert redis.Redis.from_url(REDIS_URL).ping()


def test_reachable_postgres_is_used_and_database_created(run_dir: Path) -> None:
    base = ADMIN_URL.rsplit("/", 1)[0]
    name = f"pairs_localrun_{os.getpid()}"
    url = f"{base}/{name}"
    try:
        server = ensure_postgres(run_dir, url=url)
        assert server.embedded is False and server.url == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_embedded_redis_starts_answers_and_stops(run_dir: Path) -> None:
    server = ensure_redis(run_dir, url=f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        assert server.embedded is True
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        client.xadd("s", {"data": "1"})
        assert client.xlen("s") == 1
        assert client.info("server")["redis_version"].startswith("6.2")
        client.close()
    finally:
        server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=1).ping()
    assert (run_dir / "redis" / "redis.log").exists()
    server.stop()  # idempotent


def test_embedded_postgres_starts_creates_database_and_stops(run_dir: Path) -> None:
    server = ensure_postgres(run_dir, url=f"postgresql://postgres@127.0.0.1:{_closed_port()}/pairs")
    pgdata = run_dir / "postgres" / "data"
    try:
        assert server.embedded is True
        assert server.url.endswith("/pairs")
        with psycopg.connect(server.url, autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "pairs"
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (41), (1)")
            assert conn.execute("SELECT sum(x) FROM t").fetchone()[0] == 42
            running_as = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        assert Path(running_as) == pgdata
        if os.geteuid() == 0:  # the root path: the cluster belongs to the unprivileged user
            assert pgdata.stat().st_uid == localrun.pwd.getpwnam(localrun.UNPRIVILEGED_USER).pw_uid
    finally:
        server.stop()
    assert not (pgdata / "postmaster.pid").exists(), "pg_ctl stop should remove the pid file"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=2)

    # A second start reuses the initialised cluster and the data in it.
    again = ensure_postgres(run_dir, url=f"postgresql://postgres@127.0.0.1:{_closed_port()}/pairs")
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT sum(x) FROM t").fetchone()[0] == 42
    finally:
        again.stop()


def test_unreachable_cluster_dir_is_a_clear_error() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to an unprivileged user")
    private = Path(tempfile.mkdtemp(prefix="pairs-private-"))  # mode 0700: nobody cannot enter
    try:
        with pytest.raises(ConfigError, match="cannot reach"):
            ensure_postgres(private / "inner", url=f"postgresql://postgres@127.0.0.1:{_closed_port()}/pairs")
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_listening_but_unusable_redis_is_a_config_error(run_dir: Path) -> None:
    # PostgreSQL's port speaks a different protocol: TCP open, PING fails.
    pg_port = int(ADMIN_URL.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(ConfigError, match="does not answer PING"):
        ensure_redis(run_dir, url=f"redis://127.0.0.1:{pg_port}/0")


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from services.localrun import ensure_postgres, ensure_redis
    r = ensure_redis(Path(sys.argv[1]), url=sys.argv[2])
    p = ensure_postgres(Path(sys.argv[1]), url=sys.argv[3])
    print(r.url, p.url, flush=True)
    time.sleep(120)
    """
)


def test_ctrl_c_stops_both_embedded_servers(run_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_dir), f"redis://127.0.0.1:{_closed_port()}/0",
         f"postgresql://postgres@127.0.0.1:{_closed_port()}/pairs"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,  # its own process group, like a shell job
    )
    try:
        assert proc.stdout is not None
        redis_url, pg_url = proc.stdout.readline().split()
        assert redis.Redis.from_url(redis_url).ping()
        psycopg.connect(pg_url).close()
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: SIGINT to the whole foreground group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while (run_dir / "postgres" / "data" / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (run_dir / "postgres" / "data" / "postmaster.pid").exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_url, connect_timeout=2)
