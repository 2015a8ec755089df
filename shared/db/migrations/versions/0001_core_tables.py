"""Core tables: instruments, pairs, ticks, bars, pair metrics, pair state checkpoints.

Revision ID: 0001
Revises:
"""

from alembic import op

from shared.db.timescale import core_hypertable_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CORE_TABLES = """
CREATE TABLE instruments (
    id          text PRIMARY KEY,               -- venue.SYMBOL
    venue       text NOT NULL,
    symbol      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (venue, symbol)
);

CREATE TABLE pairs (
    id            text PRIMARY KEY,             -- y~x
    y             text NOT NULL REFERENCES instruments(id),
    x             text NOT NULL REFERENCES instruments(id),
    "window"      integer NOT NULL DEFAULT 300 CHECK ("window" >= 3),
    timeframes    text[] NOT NULL DEFAULT ARRAY['1s','1m','5m'],
    hedge_method  text NOT NULL DEFAULT 'ols',
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (y <> x)
);

CREATE TABLE ticks (
    instrument  text NOT NULL,
    ts          timestamptz NOT NULL,           -- trade time
    trade_id    bigint NOT NULL,
    price       double precision NOT NULL,
    qty         double precision NOT NULL,
    side        smallint NOT NULL,              -- +1 aggressor bought, -1 aggressor sold
    source      text NOT NULL,
    PRIMARY KEY (instrument, trade_id, ts)
);
CREATE INDEX ticks_instrument_ts ON ticks (instrument, ts DESC);

CREATE TABLE bars (
    instrument  text NOT NULL,
    timeframe   text NOT NULL,
    ts          timestamptz NOT NULL,           -- UTC bucket start
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      double precision NOT NULL,
    buy_volume  double precision NOT NULL,
    trades      integer NOT NULL,
    PRIMARY KEY (instrument, timeframe, ts)
);

CREATE TABLE pair_metrics (
    pair         text NOT NULL,
    timeframe    text NOT NULL,
    ts           timestamptz NOT NULL,          -- bucket start (trade time for timeframe 'tick')
    seq          bigint NOT NULL,
    method       text NOT NULL,
    "window"     integer NOT NULL,
    y_price      double precision NOT NULL,
    x_price      double precision NOT NULL,
    warm         boolean NOT NULL,
    beta         double precision,
    alpha        double precision,
    r2           double precision,
    spread       double precision,
    zscore       double precision,
    correlation  double precision,
    adf_stat     double precision,
    adf_p        double precision,
    half_life    double precision,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (pair, timeframe, ts, seq)
);

-- One checkpoint per pair, written in the same transaction as that pair's bars and metrics:
-- the rolling state and the last stream id folded into it, so a restart resumes bit-for-bit.
CREATE TABLE pair_state (
    pair         text PRIMARY KEY,
    state        bytea,                         -- NULL until the first batch (a fence may come first)
    last_ids     jsonb NOT NULL DEFAULT '[null, null]',
    outbox       bytea,                         -- metrics of the last batch, re-published if lost
    fence        bigint NOT NULL DEFAULT 0,     -- lease fencing token of the writer
    updated_at   timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    op.execute(CORE_TABLES)
    bind = op.get_bind()
    available = bind.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).first()
    if available:
        for statement in core_hypertable_statements():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pair_state, pair_metrics, bars, ticks, pairs, instruments CASCADE")
