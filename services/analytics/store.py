"""Database side of the analytics worker: one transaction per poll round.

A round commits a batch for each pair that moved. Per batch, bars and metrics are upserted by
natural key, ticks inserted once, and the pair's checkpoint (engine state, last stream ids folded
into it, and the batch's metrics as an outbox) is written in the same transaction. Rows of all
batches go through one binary COPY per table into temp tables and one ``INSERT ... ON CONFLICT``
each: no round trip per row or per pair. Rows are inserted in key order, so two workers writing
bars or ticks of a shared instrument lock them in the same order and never deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import psycopg

from services.analytics.engine import EngineOutput
from shared.errors import LeaseLost
from shared.instruments import Pair
from shared.messages import Bar, encode
from shared.timeutil import us_to_datetime

_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS tmp_bars (LIKE bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS tmp_metrics (LIKE pair_metrics INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS tmp_ticks (LIKE ticks INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
"""

BAR_COLUMNS = ("instrument", "timeframe", "ts", "open", "high", "low", "close", "volume", "buy_volume", "trades")
METRIC_COLUMNS = (
    "pair", "timeframe", "ts", "seq", "method", "window", "y_price", "x_price", "warm", "beta", "alpha",
    "r2", "spread", "zscore", "correlation", "adf_stat", "adf_p", "half_life", "computed_at",
)  # fmt: skip
TICK_COLUMNS = ("instrument", "ts", "trade_id", "price", "qty", "side", "source")

_BAR_TYPES = ("text", "text", "timestamptz", "float8", "float8", "float8", "float8", "float8", "float8", "int4")
_METRIC_TYPES = (
    "text", "text", "timestamptz", "int8", "text", "int4", "float8", "float8", "bool", "float8", "float8",
    "float8", "float8", "float8", "float8", "float8", "float8", "float8", "timestamptz",
)  # fmt: skip
_TICK_TYPES = ("text", "timestamptz", "int8", "float8", "float8", "int2", "text")


def _quoted(cols: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in cols)


def _updates(cols: tuple[str, ...], keys: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c not in keys)


_UPSERT_BARS = (
    f"INSERT INTO bars ({_quoted(BAR_COLUMNS)}) SELECT {_quoted(BAR_COLUMNS)} FROM tmp_bars "
    f"ORDER BY instrument, timeframe, ts "
    f"ON CONFLICT (instrument, timeframe, ts) DO UPDATE SET {_updates(BAR_COLUMNS, ('instrument', 'timeframe', 'ts'))} "
    # a pair whose stream history was trimmed may see a partial first bar: never let it replace a fuller one
    f"WHERE EXCLUDED.trades >= bars.trades"
)
_UPSERT_METRICS = (
    f"INSERT INTO pair_metrics ({_quoted(METRIC_COLUMNS)}) SELECT {_quoted(METRIC_COLUMNS)} FROM tmp_metrics "
    f"ON CONFLICT (pair, timeframe, ts, seq) DO UPDATE SET "
    f"{_updates(METRIC_COLUMNS, ('pair', 'timeframe', 'ts', 'seq'))}"
)
_INSERT_TICKS = (
    f"INSERT INTO ticks ({_quoted(TICK_COLUMNS)}) SELECT {_quoted(TICK_COLUMNS)} FROM tmp_ticks "
    f"ORDER BY instrument, ts, trade_id ON CONFLICT DO NOTHING"
)
_SAVE_STATE = """
INSERT INTO pair_state (pair, state, last_ids, outbox, fence, updated_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (pair) DO UPDATE SET state = EXCLUDED.state, last_ids = EXCLUDED.last_ids,
    outbox = EXCLUDED.outbox, fence = EXCLUDED.fence, updated_at = now()
"""
_LOCK_FENCES = "SELECT pair, fence FROM pair_state WHERE pair = ANY(%s) ORDER BY pair FOR UPDATE"
_CLAIM_FENCE = """
INSERT INTO pair_state (pair, fence) VALUES (%s, %s)
ON CONFLICT (pair) DO UPDATE SET fence = GREATEST(pair_state.fence, EXCLUDED.fence), updated_at = now()
RETURNING fence
"""

# Checkpoints are MessagePack (binary floats: about half the size of JSON, and NaN kept as NaN);
# checkpoints written as JSON by earlier builds still load.
_state_encoder = msgspec.msgpack.Encoder()
_outbox_encoder = msgspec.msgpack.Encoder()
_outbox_decoder = msgspec.msgpack.Decoder(list[tuple[str, bytes]])

Outbox = list[tuple[str, bytes]]  # (metric stream entry id, encoded metric)


@dataclass(frozen=True)
class Checkpoint:
    state: dict
    last_ids: list[str | None]
    outbox: Outbox
    fence: int


def claim_fence(conn: psycopg.Connection, pair_id: str, token: int) -> None:
    """Record a new owner's token before it reads anything, so older owners' writes are refused."""
    with conn.transaction():
        (stored,) = conn.execute(_CLAIM_FENCE, (pair_id, token)).fetchone()
    if stored > token:
        raise LeaseLost(f"{pair_id}: fencing token {token} is older than the stored {stored}")


def register_pair(conn: psycopg.Connection, pair: Pair, *, window: int, timeframes: list[str], method: str) -> None:
    """Make sure the pair and its instruments exist in configuration (never overwrites edits)."""
    with conn.transaction():
        for inst in pair.legs:
            conn.execute(
                "INSERT INTO instruments (id, venue, symbol) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (inst.id, inst.venue, inst.symbol),
            )
        conn.execute(
            'INSERT INTO pairs (id, y, x, "window", timeframes, hedge_method) VALUES (%s, %s, %s, %s, %s, %s) '
            "ON CONFLICT (id) DO NOTHING",
            (pair.id, pair.y.id, pair.x.id, window, timeframes, method),
        )


def decode_state(blob: bytes) -> dict:
    """The checkpointed engine state; {} if the blob cannot be read (the runner then discards it
    as incompatible instead of failing to start)."""
    try:
        if blob[:1] == b"{":  # JSON, as earlier builds wrote it (a MessagePack map never starts so)
            return msgspec.json.decode(blob)
        return msgspec.msgpack.decode(blob)
    except msgspec.DecodeError:
        return {}


def load_checkpoint(conn: psycopg.Connection, pair_id: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT state, last_ids, outbox, fence FROM pair_state WHERE pair = %s", (pair_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    state, last_ids, outbox, fence = row
    return Checkpoint(
        state=decode_state(bytes(state)),
        last_ids=list(last_ids),
        outbox=_outbox_decoder.decode(bytes(outbox)) if outbox else [],
        fence=fence,
    )


@dataclass
class PairBatch:
    """One pair's outputs of a round, with the checkpoint that covers them."""

    pair_id: str
    fence: int
    out: EngineOutput
    state: dict
    last_ids: list[str | None]
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = [(i, encode(m)) for i, m in zip(self.out.metric_ids, self.out.metrics, strict=True)]


def _unique_bars(batches: list[PairBatch]) -> list[Bar]:
    """Two pairs sharing an instrument both build its bars, and one INSERT may not touch a row twice:
    keep the bar with the most trades (later batch on a tie), which is what writing them one after
    the other under the upsert's ``trades >=`` rule would leave."""
    best: dict[tuple[str, str, int], Bar] = {}
    for batch in batches:
        for bar in batch.out.bars:
            key = (bar.instrument, bar.timeframe, bar.ts_event_us)
            kept = best.get(key)
            if kept is None or bar.trades >= kept.trades:
                best[key] = bar
    return list(best.values())


class PairStore:
    """Writes a round's batches, each with its pair's checkpoint, in one transaction."""

    def __init__(self, conn: psycopg.Connection, *, store_ticks: bool = True) -> None:
        self.conn = conn
        self.store_ticks = store_ticks
        with conn.transaction():
            conn.execute(_TEMP_TABLES)

    def write(self, batch: PairBatch) -> None:
        """Commit one batch; raises ``LeaseLost`` (and writes nothing) if a newer owner is recorded."""
        fenced = self.write_round([batch])
        if fenced:
            raise LeaseLost(f"{batch.pair_id}: a newer owner holds fencing token {fenced[batch.pair_id]} "
                            f"(ours is {batch.fence})")  # fmt: skip

    def write_round(self, batches: list[PairBatch]) -> dict[str, int]:
        """Commit every batch whose fencing token is still current; returns the others as
        {pair: the newer token stored}, written nothing for."""
        conn = self.conn
        with conn.transaction(), conn.cursor() as cur:
            stored = dict(cur.execute(_LOCK_FENCES, ([b.pair_id for b in batches],)).fetchall())
            fenced = {b.pair_id: stored[b.pair_id] for b in batches if stored.get(b.pair_id, 0) > b.fence}
            batches = [b for b in batches if b.pair_id not in fenced]
            if not batches:
                return fenced
            bars = _unique_bars(batches)
            if bars:
                self._copy(cur, "tmp_bars", BAR_COLUMNS, _BAR_TYPES, (
                    (b.instrument, b.timeframe, us_to_datetime(b.ts_event_us), b.open, b.high, b.low, b.close,
                     b.volume, b.buy_volume, b.trades) for b in bars))  # fmt: skip
                cur.execute(_UPSERT_BARS)
            metrics = [m for b in batches for m in b.out.metrics]
            if metrics:
                self._copy(cur, "tmp_metrics", METRIC_COLUMNS, _METRIC_TYPES, (
                    (m.pair, m.timeframe, us_to_datetime(m.ts_event_us), m.seq, m.method, m.window, m.y_price,
                     m.x_price, m.warm, m.beta, m.alpha, m.r2, m.spread, m.zscore, m.correlation, m.adf_stat,
                     m.adf_p, m.half_life, us_to_datetime(m.ts_compute_us)) for m in metrics))  # fmt: skip
                cur.execute(_UPSERT_METRICS)
            ticks = [t for b in batches for t in b.out.ticks] if self.store_ticks else []
            if ticks:
                self._copy(cur, "tmp_ticks", TICK_COLUMNS, _TICK_TYPES, (
                    (t.instrument, us_to_datetime(t.ts_event_us), t.trade_id, t.price, t.qty,
                     1 if t.side == "buy" else -1, t.source) for t in ticks))  # fmt: skip
                cur.execute(_INSERT_TICKS)
            cur.executemany(_SAVE_STATE, [
                (b.pair_id, _state_encoder.encode(b.state), msgspec.json.encode(b.last_ids).decode(),
                 _outbox_encoder.encode(b.outbox), b.fence) for b in batches])  # fmt: skip
        return fenced

    @staticmethod
    def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], types: tuple[str, ...], rows) -> None:
        with cur.copy(f"COPY {table} ({_quoted(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
