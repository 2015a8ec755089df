"""The public stream contract: checked-in JSON Schema, real records validate, the example consumer works."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import msgspec
import pytest

from shared import messages
from shared.instruments import Pair
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.testing.streams import publish_ticks
from tests.pipeline.helpers import REPO, analytics_settings, run_worker_until_idle

SCHEMA_FILE = REPO / "docs" / "schemas" / "records.schema.json"
PAIR = Pair.parse("sim.ETHUSDT~sim.BTCUSDT")


def test_checked_in_schema_equals_the_record_types():
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(messages.json_schema())), (
        "record types changed: regenerate with `python -m shared.messages > docs/schemas/records.schema.json` "
        "and review the version policy in docs/streams.md"
    )


def test_unknown_fields_and_wrong_types_are_refused():
    good = messages.encode(generate_ticks(CointegratedSpec(duration_s=1))[0])
    assert isinstance(messages.decode(good), messages.Tick)
    for bad in (good.replace(b'"qty"', b'"quantity"'), good.replace(b'"side":"', b'"side":"up'), b"{}", b"not json"):
        with pytest.raises(messages.DecodeError):
            messages.decode(bad)


@pytest.fixture
def produced(settings, redis_client, db):
    publish_ticks(redis_client, settings.keys, generate_ticks(CointegratedSpec(duration_s=90, seed=8)))
    run_worker_until_idle(analytics_settings(settings, window=20, timeframes=["1s", "1m"]), [PAIR])
    return [f[b"data"] for _, f in redis_client.xrange(settings.keys.metrics(PAIR.id))]


def test_published_metrics_and_ticks_validate_against_the_schema(produced, settings, redis_client):
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    ticks = [f[b"data"] for _, f in redis_client.xrange(settings.keys.ticks("sim.BTCUSDT"), count=200)]
    for raw in produced + ticks:
        validator.validate(json.loads(raw))
    warm = [json.loads(r) for r in produced if json.loads(r)["warm"]]
    assert warm and all(m["beta"] is not None and m["zscore"] is not None for m in warm)
    # Per-timeframe seq runs 0, 1, 2, ... in stream order.
    for tf in ("1s", "1m"):
        seqs = [json.loads(r)["seq"] for r in produced if json.loads(r)["timeframe"] == tf]
        assert seqs == list(range(len(seqs)))


def test_example_consumer_reads_every_metric_and_acks(produced, settings, redis_client):
    cmd = [
        sys.executable, str(REPO / "docs" / "examples" / "metric_consumer.py"),
        "--redis-url", settings.redis_dsn, "--prefix", settings.key_prefix, "--pair", PAIR.id,
        "--group", "desk-risk", "--consumer", "risk-1", "--max-messages", str(len(produced)), "--block-ms", "500",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, timeout=60, check=True).stdout.decode().splitlines()
    warm = [msgspec.json.decode(r) for r in produced if msgspec.json.decode(r)["warm"]]
    assert len(out) == len(warm)
    assert out[0].startswith(f"{PAIR.id} {warm[0]['timeframe']} ts={warm[0]['ts_event_us']}")
    pending = redis_client.xpending(settings.keys.metrics(PAIR.id), "desk-risk")
    assert pending["pending"] == 0
