"""TimescaleDB policies: the statements planned for each database state, and a no-op on plain PostgreSQL.

The expected statements follow the TimescaleDB 2.x API (add_compression_policy, add_retention_policy,
add_continuous_aggregate_policy, ALTER TABLE ... SET (timescaledb.compress ...)); the real path runs
where the TimescaleDB image is available (docker compose, or testcontainers on a laptop).
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from pydantic import ValidationError

from shared.db import timescale as ts
from shared.db.timescale_settings import TimescaleSettings, parse_interval, sql_interval

ALL_TABLES = frozenset(ts.HYPERTABLES)
DEFAULTS = TimescaleSettings()


def test_core_hypertable_statements_kept() -> None:
    statements = ts.core_hypertable_statements()
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    assert len(statements) == 1 + len(ts.HYPERTABLES)
    assert "create_hypertable('ticks', by_range('ts', INTERVAL '1 hour')" in statements[1]


def test_fresh_database_gets_every_policy() -> None:
    plan = ts.plan_policies(ts.TimescaleState(hypertables=ALL_TABLES), DEFAULTS)
    assert plan[0] == (
        "ALTER TABLE ticks SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument',"
        " timescaledb.compress_orderby = 'ts DESC, trade_id DESC')"
    )
    assert "SELECT add_compression_policy('ticks', compress_after => INTERVAL '1 days', if_not_exists => TRUE)" in plan
    assert "SELECT add_retention_policy('ticks', drop_after => INTERVAL '14 days', if_not_exists => TRUE)" in plan
    assert "SELECT add_retention_policy('pair_metrics', drop_after => INTERVAL '180 days', if_not_exists => TRUE)" in plan
    assert any("compress_segmentby = 'pair, timeframe'" in s for s in plan)
    assert any("compress_segmentby = 'instrument, timeframe'" in s for s in plan)
    assert not any("add_retention_policy('bars'" in s for s in plan), "bars are kept by default"
    # compression is enabled before its policy is added, for each table
    for table in ts.HYPERTABLES:
        enable = next(i for i, s in enumerate(plan) if s.startswith(f"ALTER TABLE {table} "))
        policy = next(i for i, s in enumerate(plan) if f"add_compression_policy('{table}'" in s)
        assert enable < policy
    caggs = [s for s in plan if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(caggs) == 2
    hourly = caggs[0]
    assert hourly.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS bars_1h WITH (timescaledb.continuous")
    assert "time_bucket(INTERVAL '1 hours', ts)" in hourly and "WHERE timeframe = '1m'" in hourly
    assert "first(open, ts) AS open" in hourly and "last(close, ts) AS close" in hourly and "WITH NO DATA" in hourly
    assert (
        "SELECT add_continuous_aggregate_policy('bars_1d', start_offset => INTERVAL '30 days',"
        " end_offset => INTERVAL '1 days', schedule_interval => INTERVAL '1 hours', if_not_exists => TRUE)"
    ) in plan
    # 3 compression enables + 3 compression policies + 2 retention + 2 caggs + 2 refresh policies
    assert len(plan) == 12


def _applied_state(settings: TimescaleSettings) -> ts.TimescaleState:
    policies = {}
    for table in ts.HYPERTABLES:
        prefix = "metrics" if table == "pair_metrics" else table
        policies[(ts.POLICY_COMPRESSION, table)] = parse_interval(getattr(settings, f"{prefix}_compress_after"))
        retention = getattr(settings, f"{prefix}_retention")
        if retention != "off":
            policies[(ts.POLICY_RETENTION, table)] = parse_interval(retention)
    refresh = {
        view: tuple(parse_interval(getattr(settings, f"{view}_refresh_{k}")) for k in ("start", "end", "every"))
        for view in ts.CONTINUOUS_AGGREGATES
    }
    return ts.TimescaleState(ALL_TABLES, ALL_TABLES, frozenset(ts.CONTINUOUS_AGGREGATES), policies, refresh)


def test_database_already_as_configured_needs_nothing() -> None:
    assert ts.plan_policies(_applied_state(DEFAULTS), DEFAULTS) == []


def test_changed_settings_replace_only_the_changed_policies() -> None:
    changed = TimescaleSettings(ticks_retention="3 days", bars_retention="365 days", metrics_retention="off",
                                bars_1h_refresh_every="5 minutes")
    plan = ts.plan_policies(_applied_state(DEFAULTS), changed)
    assert plan == [
        "SELECT remove_retention_policy('ticks', if_exists => TRUE)",
        "SELECT add_retention_policy('ticks', drop_after => INTERVAL '3 days', if_not_exists => TRUE)",
        "SELECT add_retention_policy('bars', drop_after => INTERVAL '365 days', if_not_exists => TRUE)",
        "SELECT remove_retention_policy('pair_metrics', if_exists => TRUE)",
        "SELECT remove_continuous_aggregate_policy('bars_1h', if_exists => TRUE)",
        "SELECT add_continuous_aggregate_policy('bars_1h', start_offset => INTERVAL '3 days',"
        " end_offset => INTERVAL '1 hours', schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE)",
    ]


def test_equal_intervals_in_other_units_are_not_changes() -> None:
    same = TimescaleSettings(ticks_retention="336 hours", ticks_compress_after="24 hours")  # 14 days, 1 day
    assert ts.plan_policies(_applied_state(DEFAULTS), same) == []


def test_non_hypertables_and_disabled_caggs_get_nothing() -> None:
    plan = ts.plan_policies(ts.TimescaleState(hypertables=frozenset({"ticks"})), DEFAULTS)
    assert plan and all("ticks" in s for s in plan)
    no_caggs = ts.plan_policies(ts.TimescaleState(hypertables=ALL_TABLES), TimescaleSettings(continuous_aggregates=False))
    assert not any("bars_1" in s for s in no_caggs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7 days", timedelta(days=7)), ("36 Hours", timedelta(hours=36)), ("1 week", timedelta(days=7)),
     ("90 minutes", timedelta(minutes=90)), ("30 second", timedelta(seconds=30))],
)
def test_parse_interval(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize("bad", ["1 month", "2 years", "0 days", "days", "7", "1 day'; DROP TABLE bars; --", "-1 day"])
def test_bad_intervals_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        sql_interval(bad)
    with pytest.raises(ValidationError):
        TimescaleSettings(ticks_retention=bad)


def test_refresh_window_must_cover_two_buckets() -> None:
    with pytest.raises(ValidationError, match="two buckets"):
        TimescaleSettings(bars_1d_refresh_start="2 days", bars_1d_refresh_end="1 day")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMESCALE_TICKS_RETENTION", "off")
    monkeypatch.setenv("TIMESCALE_BARS_COMPRESS_AFTER", "2 weeks")
    s = TimescaleSettings()
    assert s.ticks_retention == "off" and s.bars_compress_after == "2 weeks"


def _catalog(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT c.relname, c.relkind, c.reloptions::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1"
    ).fetchall() + conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1").fetchall()


@pytest.mark.parametrize("autocommit", [True, False])
def test_plain_postgresql_is_left_alone(database_url: str, autocommit: bool) -> None:
    with psycopg.connect(database_url, autocommit=True) as probe:
        if ts.timescale_enabled(probe):
            pytest.skip("this database has TimescaleDB; the plain-PostgreSQL path is not reachable")
        before = _catalog(probe)
    with psycopg.connect(database_url, autocommit=autocommit) as conn:
        assert ts.apply_timescale_policies(conn, DEFAULTS) == []
        assert conn.autocommit is autocommit
    with psycopg.connect(database_url, autocommit=True) as probe:
        after = _catalog(probe)
    assert after == before
    assert any(name == "bars" for name, *_ in before)
