"""SQL emitted only when the timescaledb extension is available (the docker compose path).

Plain PostgreSQL gets the same tables without these statements. Statements are built by pure
functions so tests can check exactly what would run; ``plan_policies`` compares the wanted policies
with what the database already has (``TimescaleState``) and ``apply_timescale_policies`` runs the
difference, so ``pairs migrate`` can be repeated safely and picks up changed settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg

from shared.config import CommonSettings
from shared.db.timescale_settings import OFF, TimescaleSettings, parse_interval, sql_interval

log = logging.getLogger(__name__)

# table -> (time column, chunk interval). Ticks are dense, so their chunks are short.
HYPERTABLES: dict[str, tuple[str, str]] = {
    "ticks": ("ts", "1 hour"),
    "bars": ("ts", "1 day"),
    "pair_metrics": ("ts", "1 day"),
}

# table -> (segment by, order by). Segmenting by the series key keeps one series per compressed
# batch, so reads for one instrument/pair decompress only their own rows; newest first matches
# the "latest N" queries of the api and the state rebuild.
COMPRESSION: dict[str, tuple[str, str]] = {
    "ticks": ("instrument", "ts DESC, trade_id DESC"),
    "bars": ("instrument, timeframe", "ts DESC"),
    "pair_metrics": ("pair, timeframe", "ts DESC, seq DESC"),
}

# Continuous aggregate -> bucket width. Both are built from the 1m bars.
CONTINUOUS_AGGREGATES: dict[str, str] = {"bars_1h": "1 hour", "bars_1d": "1 day"}
SOURCE_TIMEFRAME = "1m"

POLICY_COMPRESSION = "policy_compression"
POLICY_RETENTION = "policy_retention"
POLICY_REFRESH = "policy_refresh_continuous_aggregate"


def core_hypertable_statements() -> list[str]:
    out = ["CREATE EXTENSION IF NOT EXISTS timescaledb"]
    for table, (column, interval) in HYPERTABLES.items():
        out.append(
            f"SELECT create_hypertable('{table}', by_range('{column}', INTERVAL '{interval}'),"
            f" if_not_exists => TRUE, migrate_data => TRUE)"
        )
    return out


def _setting_prefix(table: str) -> str:
    return "metrics" if table == "pair_metrics" else table


# ------------------------------------------------------------------------- statement builders


def enable_compression_statement(table: str) -> str:
    segment_by, order_by = COMPRESSION[table]
    return (
        f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segment_by}',"
        f" timescaledb.compress_orderby = '{order_by}')"
    )


def add_compression_policy_statement(table: str, after: str) -> str:
    return f"SELECT add_compression_policy('{table}', compress_after => {sql_interval(after)}, if_not_exists => TRUE)"


def remove_policy_statement(proc: str, relation: str) -> str:
    fn = {
        POLICY_COMPRESSION: "remove_compression_policy",
        POLICY_RETENTION: "remove_retention_policy",
        POLICY_REFRESH: "remove_continuous_aggregate_policy",
    }[proc]
    return f"SELECT {fn}('{relation}', if_exists => TRUE)"


def add_retention_policy_statement(table: str, drop_after: str) -> str:
    return f"SELECT add_retention_policy('{table}', drop_after => {sql_interval(drop_after)}, if_not_exists => TRUE)"


def create_continuous_aggregate_statement(view: str) -> str:
    """OHLCV of 1m bars re-bucketed; real-time (``materialized_only = false``) so the newest bucket is
    always complete up to the last 1m bar."""
    bucket = sql_interval(CONTINUOUS_AGGREGATES[view])
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view}"
        f" WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS"
        f" SELECT instrument, time_bucket({bucket}, ts) AS ts,"
        f" first(open, ts) AS open, max(high) AS high, min(low) AS low, last(close, ts) AS close,"
        f" sum(volume) AS volume, sum(buy_volume) AS buy_volume, sum(trades) AS trades"
        f" FROM bars WHERE timeframe = '{SOURCE_TIMEFRAME}'"
        f" GROUP BY instrument, time_bucket({bucket}, ts)"
        f" WITH NO DATA"
    )


def add_refresh_policy_statement(view: str, start: str, end: str, every: str) -> str:
    return (
        f"SELECT add_continuous_aggregate_policy('{view}', start_offset => {sql_interval(start)},"
        f" end_offset => {sql_interval(end)}, schedule_interval => {sql_interval(every)}, if_not_exists => TRUE)"
    )


# -------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class TimescaleState:
    """What a TimescaleDB database has now (read by ``read_state``; built by hand in tests)."""

    hypertables: frozenset[str] = frozenset()
    compression_enabled: frozenset[str] = frozenset()
    continuous_aggregates: frozenset[str] = frozenset()
    # (proc, table) -> compress_after / drop_after
    table_policies: Mapping[tuple[str, str], timedelta] = field(default_factory=dict)
    # view -> (start_offset, end_offset, schedule_interval)
    refresh_policies: Mapping[str, tuple[timedelta, timedelta, timedelta]] = field(default_factory=dict)


def _reconcile(state: TimescaleState, proc: str, relation: str, wanted: str, add: str) -> list[str]:
    current = state.table_policies.get((proc, relation))
    if wanted == OFF:
        return [remove_policy_statement(proc, relation)] if current is not None else []
    if current is None:
        return [add]
    if current == parse_interval(wanted):
        return []
    return [remove_policy_statement(proc, relation), add]


def plan_policies(state: TimescaleState, settings: TimescaleSettings) -> list[str]:
    """The statements that bring ``state`` to ``settings``; empty when nothing differs."""
    out: list[str] = []
    for table in HYPERTABLES:
        if table not in state.hypertables:
            log.warning("%s is not a hypertable (created before the extension?); no policies for it", table)
            continue
        prefix = _setting_prefix(table)
        if table not in state.compression_enabled:
            out.append(enable_compression_statement(table))
        after = getattr(settings, f"{prefix}_compress_after")
        out += _reconcile(state, POLICY_COMPRESSION, table, after, add_compression_policy_statement(table, after))
        drop = getattr(settings, f"{prefix}_retention")
        add = add_retention_policy_statement(table, drop) if drop != OFF else ""
        out += _reconcile(state, POLICY_RETENTION, table, drop, add)
    if settings.continuous_aggregates and "bars" in state.hypertables:
        for view in CONTINUOUS_AGGREGATES:
            if view not in state.continuous_aggregates:
                out.append(create_continuous_aggregate_statement(view))
            start, end, every = (getattr(settings, f"{view}_refresh_{k}") for k in ("start", "end", "every"))
            wanted = (parse_interval(start), parse_interval(end), parse_interval(every))
            current = state.refresh_policies.get(view)
            add = add_refresh_policy_statement(view, start, end, every)
            if current is None:
                out.append(add)
            elif current != wanted:
                out += [remove_policy_statement(POLICY_REFRESH, view), add]
    return out


# ------------------------------------------------------------------------------------- database


def timescale_enabled(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def read_state(conn: psycopg.Connection) -> TimescaleState:
    """Hypertables, compression, caggs and policy jobs of the public schema (TimescaleDB 2.x catalogs)."""
    hypertables = {r[0] for r in conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'")}
    compressed = {r[0] for r in conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = 'public' AND compression_enabled")}
    caggs = {r[0] for r in conn.execute(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'")}
    table_policies: dict[tuple[str, str], timedelta] = {}
    refresh: dict[str, tuple[timedelta, timedelta, timedelta]] = {}
    rows = conn.execute(
        "SELECT j.proc_name, coalesce(ca.view_name, j.hypertable_name),"
        " (j.config->>'compress_after')::interval, (j.config->>'drop_after')::interval,"
        " (j.config->>'start_offset')::interval, (j.config->>'end_offset')::interval, j.schedule_interval"
        " FROM timescaledb_information.jobs j"
        " LEFT JOIN timescaledb_information.continuous_aggregates ca"
        "   ON ca.materialization_hypertable_schema = j.hypertable_schema"
        "  AND ca.materialization_hypertable_name = j.hypertable_name"
        " WHERE j.proc_name IN (%s, %s, %s)",
        (POLICY_COMPRESSION, POLICY_RETENTION, POLICY_REFRESH),
    )
    for proc, relation, compress_after, drop_after, start, end, every in rows:
        if proc == POLICY_COMPRESSION:
            table_policies[(proc, relation)] = compress_after
        elif proc == POLICY_RETENTION:
            table_policies[(proc, relation)] = drop_after
        else:
            refresh[relation] = (start, end, every)
    return TimescaleState(frozenset(hypertables), frozenset(compressed), frozenset(caggs), table_policies, refresh)


def apply_timescale_policies(
    conn: psycopg.Connection, settings: TimescaleSettings | CommonSettings | None = None
) -> list[str]:
    """Bring compression, retention and continuous aggregates in line with ``settings``.

    Returns the statements run: empty on plain PostgreSQL (nothing is touched) and on a database
    already as configured. Runs in autocommit, because TimescaleDB creates continuous aggregates
    outside transactions; the connection's autocommit mode is restored afterwards.
    """
    if not isinstance(settings, TimescaleSettings):
        settings = TimescaleSettings()  # the TIMESCALE_* environment, whatever else was passed
    if not timescale_enabled(conn):
        return []
    previous = conn.autocommit
    if not previous:
        conn.commit()
        conn.autocommit = True
    try:
        statements = plan_policies(read_state(conn), settings)
        for statement in statements:
            log.info("timescale: %s", statement)
            conn.execute(statement)
        return statements
    finally:
        if not previous:
            conn.autocommit = False
