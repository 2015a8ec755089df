"""Database side of the analytics worker: one transaction per processed batch.

Bars and metrics are upserted by natural key, ticks inserted once, and the pair's checkpoint
(engine state, last stream ids folded into it, and the batch's metrics as an outbox) is written
in the same transaction. Rows go through binary COPY into temp tables and one
``INSERT ... ON CONFLICT`` each: no round trip per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import psycopg

from services.analytics.engine import EngineOutput
from shared.errors import LeaseLost
from shared.instruments import Pair
from shared.messages import encode
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
    f"ON CONFLICT DO NOTHING"
)
_SAVE_STATE = """
INSERT INTO pair_state (pair, state, last_ids, outbox, fence, updated_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (pair) DO UPDATE SET state = EXCLUDED.state, last_ids = EXCLUDED.last_ids,
    outbox = EXCLUDED.outbox, fence = EXCLUDED.fence, updated_at = now()
"""
_LOCK_FENCE = "SELECT fence FROM pair_state WHERE pair = %s FOR UPDATE"
_CLAIM_FENCE = """
INSERT INTO pair_state (pair, fence) VALUES (%s, %s)
ON CONFLICT (pair) DO UPDATE SET fence = GREATEST(pair_state.fence, EXCLUDED.fence), updated_at = now()
RETURNING fence
"""

_state_encoder = msgspec.json.Encoder()
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


def load_checkpoint(conn: psycopg.Connection, pair_id: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT state, last_ids, outbox, fence FROM pair_state WHERE pair = %s", (pair_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    state, last_ids, outbox, fence = row
    return Checkpoint(
        state=msgspec.json.decode(bytes(state)),
        last_ids=list(last_ids),
        outbox=_outbox_decoder.decode(bytes(outbox)) if outbox else [],
        fence=fence,
    )


class PairStore:
    """Writes one batch of a pair's outputs plus its checkpoint atomically."""

    def __init__(self, conn: psycopg.Connection, *, store_ticks: bool = True) -> None:
        self.conn = conn
        self.store_ticks = store_ticks
        with conn.transaction():
            conn.execute(_TEMP_TABLES)

    def write(self, out: EngineOutput, *, pair_id: str, state: dict, last_ids: list[str | None], fence: int) -> Outbox:
        """Commit the batch; returns the metrics (the outbox) to publish after commit.

        Raises ``LeaseLost`` (and writes nothing) when a newer owner's fencing token is stored.
        """
        outbox = [(i, encode(m)) for i, m in zip(out.metric_ids, out.metrics, strict=True)]
        conn = self.conn
        with conn.transaction(), conn.cursor() as cur:
            row = cur.execute(_LOCK_FENCE, (pair_id,)).fetchone()
            if row is not None and row[0] > fence:
                raise LeaseLost(f"{pair_id}: a newer owner holds fencing token {row[0]} (ours is {fence})")
            if out.bars:
                self._copy(cur, "tmp_bars", BAR_COLUMNS, _BAR_TYPES, (
                    (b.instrument, b.timeframe, us_to_datetime(b.ts_event_us), b.open, b.high, b.low, b.close,
                     b.volume, b.buy_volume, b.trades) for b in out.bars))  # fmt: skip
                cur.execute(_UPSERT_BARS)
            if out.metrics:
                self._copy(cur, "tmp_metrics", METRIC_COLUMNS, _METRIC_TYPES, (
                    (m.pair, m.timeframe, us_to_datetime(m.ts_event_us), m.seq, m.method, m.window, m.y_price,
                     m.x_price, m.warm, m.beta, m.alpha, m.r2, m.spread, m.zscore, m.correlation, m.adf_stat,
                     m.adf_p, m.half_life, us_to_datetime(m.ts_compute_us)) for m in out.metrics))  # fmt: skip
                cur.execute(_UPSERT_METRICS)
            if out.ticks and self.store_ticks:
                self._copy(cur, "tmp_ticks", TICK_COLUMNS, _TICK_TYPES, (
                    (t.instrument, us_to_datetime(t.ts_event_us), t.trade_id, t.price, t.qty,
                     1 if t.side == "buy" else -1, t.source) for t in out.ticks))  # fmt: skip
                cur.execute(_INSERT_TICKS)
            cur.execute(
                _SAVE_STATE,
                (pair_id, _state_encoder.encode(state), msgspec.json.encode(last_ids).decode(),
                 _outbox_encoder.encode(outbox), fence),
            )  # fmt: skip
        return outbox

    @staticmethod
    def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], types: tuple[str, ...], rows) -> None:
        with cur.copy(f"COPY {table} ({_quoted(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
