"""Checkpoints: MessagePack written, JSON from earlier builds still read; pair_state blobs stored
uncompressed (migration 0003)."""

from __future__ import annotations

import math
import uuid

import msgspec
import psycopg
import pytest
from alembic import command

from services.analytics.engine import EngineOutput, PairEngine
from services.analytics.store import PairBatch, PairStore, decode_state, load_checkpoint, register_pair
from shared.analytics.pair_stream import HEDGE_METHODS
from shared.db.migrate import alembic_config
from shared.instruments import Pair
from shared.messages import Tick
from shared.testing.databases import temporary_database
from shared.testing.generator import CointegratedSpec, generate_ticks

SPEC = CointegratedSpec(duration_s=150, seed=3)
PAIR = Pair.parse(f"{SPEC.y_instrument}~{SPEC.x_instrument}")
TFS = ["tick", "1s"]
SLOW_METHODS = ("huber", "theil_sen")  # robust fits per merged tick take seconds: bars only for these
WINDOW = 25


@pytest.fixture(scope="module")
def ticks() -> list[Tick]:
    return generate_ticks(SPEC)


def feed(engine: PairEngine, ticks: list[Tick]) -> EngineOutput:
    out = EngineOutput()
    for t in ticks:
        engine.process(0 if t.instrument == PAIR.y.id else 1, t, out)
    return out


def assert_same_bits(a, b, path: str = "") -> None:
    """Equal structure and values, floats bit for bit (a tuple and a list of the same items are equal)."""
    if isinstance(a, float) or isinstance(b, float):
        assert type(a) is float and type(b) is float, f"{path}: {a!r} vs {b!r}"
        assert a.hex() == b.hex() or (math.isnan(a) and math.isnan(b)), f"{path}: {a!r} vs {b!r}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same_bits(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same_bits(u, v, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} vs {b!r}"


def without_compute_time(records) -> list[dict]:
    rows = []
    for r in records:
        d = msgspec.structs.asdict(r)
        d.pop("ts_compute_us", None)
        rows.append(d)
    return rows


@pytest.mark.parametrize("method", HEDGE_METHODS)
def test_json_checkpoint_of_an_earlier_build_loads_and_continues_like_the_messagepack_one(db, ticks, method):
    cut = len(ticks) // 2
    tfs = ["1s"] if method in SLOW_METHODS else TFS
    engine = PairEngine(PAIR, tfs, WINDOW, method)
    first = feed(engine, ticks[:cut])
    assert any(m.warm for m in first.metrics)  # a full window: the state holds real rolling sums
    state = engine.get_state()
    register_pair(db, PAIR, window=WINDOW, timeframes=tfs, method=method)
    PairStore(db).write(PairBatch(PAIR.id, 0, first, state, ["7-0", "9-0"]))

    (blob,) = db.execute("SELECT state FROM pair_state WHERE pair = %s", (PAIR.id,)).fetchone()
    assert bytes(blob)[:1] != b"{"  # MessagePack now, not JSON
    assert_same_bits(msgspec.msgpack.decode(bytes(blob)), state)
    from_msgpack = load_checkpoint(db, PAIR.id)
    assert_same_bits(from_msgpack.state, state)

    # What an earlier build left behind: the same state as JSON.
    json_blob = msgspec.json.encode(state)
    assert json_blob[:1] == b"{"
    db.execute("UPDATE pair_state SET state = %s WHERE pair = %s", (json_blob, PAIR.id))
    from_json = load_checkpoint(db, PAIR.id)
    assert_same_bits(from_json.state, from_msgpack.state)
    assert from_json.last_ids == ["7-0", "9-0"] and from_json.outbox == from_msgpack.outbox
    assert_same_bits(decode_state(json_blob), decode_state(msgspec.msgpack.encode(state)))

    # Restored from either, the engine continues exactly like the one that never stopped.
    rest = ticks[cut:]
    expected = feed(engine, rest)
    assert any(m.warm and m.beta is not None for m in expected.metrics)
    for restored_state in (from_msgpack.state, from_json.state):
        restored = PairEngine.from_state(PAIR, restored_state)
        out = feed(restored, rest)
        assert_same_bits(without_compute_time(out.metrics), without_compute_time(expected.metrics), "metrics")
        assert_same_bits(without_compute_time(out.bars), without_compute_time(expected.bars), "bars")
        assert out.metric_ids == expected.metric_ids
        assert_same_bits(restored.get_state(), engine.get_state(), "state")


def attstorage(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'pair_state'::regclass AND attnum > 0 "
        "AND NOT attisdropped"
    ).fetchall()
    return dict(rows)


def compressed_size(conn: psycopg.Connection, pair: str) -> tuple[str | None, int, str | None, int]:
    """(compression method, stored size) of a pair's state and outbox."""
    return conn.execute(
        "SELECT pg_column_compression(state), pg_column_size(state), pg_column_compression(outbox), "
        "pg_column_size(outbox) FROM pair_state WHERE pair = %s",
        (pair,),
    ).fetchone()


BIG = b"\x00" * 200_000  # compresses to almost nothing: pglz would take it


def test_state_and_outbox_are_stored_external_at_head(db):
    storage = attstorage(db)
    assert storage["state"] == "e" and storage["outbox"] == "e"
    assert storage["last_ids"] == "x"  # the other varlena columns keep the default
    db.execute("INSERT INTO pair_state (pair, state, outbox) VALUES ('sim.AA~sim.BB', %s, %s)", (BIG, BIG))
    method_s, size_s, method_o, size_o = compressed_size(db, "sim.AA~sim.BB")
    assert (method_s, method_o) == (None, None)
    assert size_s >= len(BIG) and size_o >= len(BIG)


def test_migration_0003_down_and_up(service_endpoints):
    with temporary_database(service_endpoints.admin_url, f"pairs_test_mig_{uuid.uuid4().hex[:10]}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            assert attstorage(conn)["state"] == "e"
            conn.execute("INSERT INTO pair_state (pair, state, outbox) VALUES ('head', %s, %s)", (BIG, BIG))
            command.downgrade(alembic_config(url), "0002")
            storage = attstorage(conn)
            assert (storage["state"], storage["outbox"]) == ("x", "x")
            conn.execute("INSERT INTO pair_state (pair, state, outbox) VALUES ('at0002', %s, %s)", (BIG, BIG))
            method_s, size_s, method_o, size_o = compressed_size(conn, "at0002")
            assert (
                (method_s, method_o) == ("pglz", "pglz")
                and size_s < len(BIG) // 10
                and size_o < len(BIG) // 10
            )
            command.upgrade(alembic_config(url), "head")
            storage = attstorage(conn)
            assert (storage["state"], storage["outbox"]) == ("e", "e")
            # existing values keep how they were stored; new writes are not compressed
            assert compressed_size(conn, "at0002")[0] == "pglz"
            assert compressed_size(conn, "head")[0] is None
            conn.execute("INSERT INTO pair_state (pair, state, outbox) VALUES ('again', %s, %s)", (BIG, BIG))
            assert compressed_size(conn, "again")[0] is None
