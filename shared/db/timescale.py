"""SQL emitted only when the timescaledb extension is available (the docker compose path).

Plain PostgreSQL gets the same tables without these statements. Kept as pure functions returning
statement strings so tests can check exactly what would run.
"""

from __future__ import annotations

# table -> (time column, chunk interval). Ticks are dense, so their chunks are short.
HYPERTABLES: dict[str, tuple[str, str]] = {
    "ticks": ("ts", "1 hour"),
    "bars": ("ts", "1 day"),
    "pair_metrics": ("ts", "1 day"),
}


def core_hypertable_statements() -> list[str]:
    out = ["CREATE EXTENSION IF NOT EXISTS timescaledb"]
    for table, (column, interval) in HYPERTABLES.items():
        out.append(
            f"SELECT create_hypertable('{table}', by_range('{column}', INTERVAL '{interval}'),"
            f" if_not_exists => TRUE, migrate_data => TRUE)"
        )
    return out
