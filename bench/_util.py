"""Helpers shared by the suite runner and the pipeline/storage benchmarks.

A throw-away benchmark database (created, migrated, dropped), Redis namespace cleanup, percentiles,
and per-process CPU time and peak RSS read from ``/proc`` (Linux: the benchmarks run on the CI
machine), so a process's share of the machine can be reported without instrumenting it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import redis

from shared.testing.databases import temporary_database

ADMIN_URL = os.environ.get("PAIRS_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100



@contextlib.contextmanager
def bench_database(admin_url: str | None = None, tag: str = "bench") -> Iterator[str]:
    """A fresh, migrated database named ``pairs_<tag>_<hex>``; dropped (even if in use) afterwards."""
    with temporary_database(admin_url or ADMIN_URL, f"pairs_{tag}_{uuid.uuid4().hex[:8]}") as url:
        yield url


def truncate_all(dsn: str) -> None:
    """Empty every data table (each benchmark scenario starts from a clean database)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key of a namespace; returns how many were deleted."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    return len(keys)


def percentile(values: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float  # user + system CPU seconds since the process started
    rss_mb: float
    peak_rss_mb: float  # VmHWM: the highest resident set size so far


def proc_sample(pid: int) -> ProcSample | None:
    """CPU time and memory of one process, or None when it is gone (or /proc is not there)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may contain spaces): utime, stime are 14, 15.
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    mem = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    if "VmHWM" not in mem:  # a zombie (exited, not yet reaped): its memory figures are gone
        return None
    return ProcSample(cpu, int(mem.get("VmRSS", 0)) / 1024, int(mem.get("VmHWM", 0)) / 1024)


def machine_cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot (every process, ours or not)."""
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    total = sum(parts[:8])
    return total - idle, total


def redis_server_pid(client: redis.Redis) -> int | None:
    info = client.info("server")
    pid = info.get("process_id")
    return int(pid) if pid else None


def postgres_backend_pids(dsn: str, dbname: str) -> list[int]:
    """Server processes serving connections to one database (our workers' backends)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (dbname,)).fetchall()
    return [r[0] for r in rows]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total_gb() -> float:
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        return kb / 1024 / 1024
    except (OSError, AttributeError):
        return float("nan")


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"
