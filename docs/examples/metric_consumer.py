#!/usr/bin/env python3
"""Example downstream consumer of a pair's metric stream. Copy it; it needs only `redis`.

    python docs/examples/metric_consumer.py --pair binance-spot.ETHUSDT~binance-spot.BTCUSDT \
        --group desk-risk --consumer risk-1

What it shows:
* its own consumer group (created at the stream's start, or at its end with --from-now), so it
  gets every metric regardless of other readers;
* at start, it first re-reads its own pending entries (delivered before a crash, never acked),
  and claims entries left pending by dead consumers of the same group (XAUTOCLAIM);
* it acks only after handling a record, so a crash loses nothing (handle idempotently: the key
  (pair, timeframe, ts_event_us, seq) identifies a record);
* it skips records whose schema version it does not know, instead of failing.
"""

from __future__ import annotations

import argparse
import json
import sys

import redis

KNOWN_VERSIONS = {1}


def handle(record: dict) -> None:
    """Your logic goes here; this example prints one line per warm metric."""
    if record["warm"]:
        print(
            f"{record['pair']} {record['timeframe']} ts={record['ts_event_us']} seq={record['seq']} "
            f"beta={record['beta']:.6g} z={record['zscore']:.3f} corr={record['correlation']}",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--prefix", default="", help="the deployment's PAIRS_KEY_PREFIX")
    p.add_argument("--pair", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--consumer", required=True)
    p.add_argument("--from-now", action="store_true", help="a new group starts at the end of the stream")
    p.add_argument("--max-messages", type=int, help="stop after this many (for tests)")
    p.add_argument("--block-ms", type=int, default=5000)
    args = p.parse_args()

    r = redis.Redis.from_url(args.redis_url)
    stream = f"{args.prefix}metrics:{args.pair}"
    try:
        r.xgroup_create(stream, args.group, id="$" if args.from_now else "0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    # Take over what dead consumers of this group left pending (idle for a minute or more).
    r.xautoclaim(stream, args.group, args.consumer, min_idle_time=60_000, start_id="0-0", count=1000)

    handled = 0
    cursor = "0"  # first our own pending entries, then new ones (">")
    while args.max_messages is None or handled < args.max_messages:
        reply = r.xreadgroup(args.group, args.consumer, {stream: cursor}, count=100,
                             block=None if cursor == "0" else args.block_ms)
        entries = reply[0][1] if reply else []
        if cursor == "0" and not entries:
            cursor = ">"
            continue
        for entry_id, fields in entries:
            if fields:  # None: the entry was trimmed while pending
                record = json.loads(fields[b"data"])
                if record.get("type") == "metric" and record.get("v") in KNOWN_VERSIONS:
                    handle(record)
            r.xack(stream, args.group, entry_id)
            handled += 1
            if cursor == "0":
                cursor = entry_id.decode()
            if args.max_messages is not None and handled >= args.max_messages:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
