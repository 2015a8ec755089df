"""Alerts: rules, events (one row per firing), per-(rule, pair, timeframe) state, delivery dead letters.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ALERT_TABLES = """
CREATE TABLE alert_rules (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    pair         text,                           -- NULL: every pair
    timeframe    text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('condition', 'signal')),
    expression   text NOT NULL,                  -- canonical text of the rule
    spec         jsonb NOT NULL,                 -- the validated tree / signal parameters
    enabled      boolean NOT NULL DEFAULT true,
    cooldown_s   double precision NOT NULL DEFAULT 0 CHECK (cooldown_s >= 0),
    pending_n    integer NOT NULL DEFAULT 1 CHECK (pending_n >= 1),
    pending_s    double precision NOT NULL DEFAULT 0 CHECK (pending_s >= 0),
    channels     jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{format, url, secret_ref, chat_id}]
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_pair_timeframe ON alert_rules (pair, timeframe) WHERE enabled;

-- One row per firing. The primary key includes the time column so the table can become a
-- TimescaleDB hypertable; dedupe_key already embeds the metric time, so it alone is unique.
CREATE TABLE alert_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    dedupe_key         text NOT NULL,            -- rule:pair:timeframe:kind:metric ts
    ts                 timestamptz NOT NULL,     -- event time of the metric that fired
    rule_id            bigint NOT NULL,          -- no FK: history outlives a deleted rule
    rule_name          text NOT NULL,
    pair               text NOT NULL,
    timeframe          text NOT NULL,
    kind               text NOT NULL,
    message            text NOT NULL,
    "values"           jsonb NOT NULL,
    fired_at           timestamptz NOT NULL,     -- local compute time
    stream_id          text,                     -- id on the alerts stream once published
    delivery_status    text NOT NULL DEFAULT 'pending'
                       CHECK (delivery_status IN ('none', 'pending', 'delivered', 'failed')),
    delivery_attempts  integer NOT NULL DEFAULT 0,
    delivered_at       timestamptz,
    delivery_error     text,
    PRIMARY KEY (dedupe_key, ts)
);
CREATE INDEX alert_events_rule_ts ON alert_events (rule_id, ts DESC);
CREATE INDEX alert_events_pair_ts ON alert_events (pair, ts DESC);
CREATE INDEX alert_events_ts_id ON alert_events (ts DESC, id DESC);
CREATE INDEX alert_events_outbox ON alert_events (id) WHERE stream_id IS NULL OR delivery_status = 'pending';

-- Hysteresis / pending / cooldown / position and the last processed metric, per rule and series.
CREATE TABLE alert_state (
    rule_id     bigint NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    pair        text NOT NULL,
    timeframe   text NOT NULL,
    state       jsonb NOT NULL,
    last_ts     timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, pair, timeframe)
);

-- Webhook deliveries that failed every retry.
CREATE TABLE alert_delivery_deadletters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key  text NOT NULL,
    event_ts    timestamptz NOT NULL,
    rule_id     bigint NOT NULL,
    channel     jsonb NOT NULL,
    attempts    integer NOT NULL,
    last_error  text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_delivery_deadletters_rule ON alert_delivery_deadletters (rule_id, created_at DESC);
"""


def upgrade() -> None:
    op.execute(ALERT_TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS alert_delivery_deadletters, alert_state, alert_events, alert_rules CASCADE")
