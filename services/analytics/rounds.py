"""Commit a worker round: every moved pair's batch in one database transaction.

One commit per round instead of one per pair is what keeps tick-to-metric latency low when a
worker owns many busy pairs: a tick waits for one round, and a round costs one transaction.
Failures stay per pair. A pair fenced by a newer owner is left out and dropped; the others
commit. If the shared transaction fails, each batch is retried in its own transaction, and only
a pair whose own write fails goes back to its checkpoint (``PairRunner.failed``).
"""

from __future__ import annotations

import logging
import time

import redis

from services.analytics.entries import check_publish_results
from services.analytics.runner import PairRunner
from services.analytics.store import PairBatch, PairStore
from shared.errors import LeaseLost
from shared.observability import ServiceMetrics

log = logging.getLogger(__name__)


def commit_round(
    store: PairStore, r: redis.Redis, pending: list[tuple[PairRunner, PairBatch]], metrics: ServiceMetrics
) -> dict[str, str]:
    """Commit, then acknowledge and publish each pair's batch; returns {pair: why} of pairs lost."""
    if not pending:
        return {}
    started = time.perf_counter()
    try:
        fenced = store.write_round([batch for _, batch in pending])
    except Exception as exc:  # noqa: BLE001 - whatever failed, isolate it to its pair
        log.warning("round transaction failed; committing its pairs one by one", extra={"error": repr(exc)})
        return _commit_one_by_one(r, store, pending)
    metrics.db_write_latency.labels("round").observe(time.perf_counter() - started)
    lost = {b.pair_id: f"a newer owner holds fencing token {fenced[b.pair_id]} (ours is {b.fence})"
            for _, b in pending if b.pair_id in fenced}  # fmt: skip
    _after_commit(r, [(runner, batch) for runner, batch in pending if batch.pair_id not in fenced])
    return lost


def _commit_one_by_one(
    r: redis.Redis, store: PairStore, pending: list[tuple[PairRunner, PairBatch]]
) -> dict[str, str]:
    lost = {}
    for runner, batch in pending:
        try:
            store.write(batch)
        except LeaseLost as exc:
            lost[batch.pair_id] = str(exc)
        except Exception as exc:  # noqa: BLE001 - this pair's own failure: retry, isolate, dead-letter
            runner.failed(exc)
        else:
            _after_commit(r, [(runner, batch)])
    return lost


def _after_commit(r: redis.Redis, committed: list[tuple[PairRunner, PairBatch]]) -> None:
    """Every committed pair's XACKs and metric XADDs in one pipeline; a pair whose commands failed
    (or all, if Redis failed) re-reads from its checkpoint."""
    if not committed:
        return
    pipe = r.pipeline(transaction=False)
    spans = []
    for runner, batch in committed:
        start = len(pipe)
        runner.queue_after_commit(batch, pipe)
        spans.append((runner, start, len(pipe)))
    try:
        results = pipe.execute(raise_on_error=False)
    except Exception as exc:  # noqa: BLE001 - Redis unreachable mid-round: every pair re-reads
        for runner, _, _ in spans:
            runner.failed(exc)
        return
    for runner, start, end in spans:
        try:
            check_publish_results(results[start:end])
        except Exception as exc:  # noqa: BLE001 - e.g. Redis refused the ack: re-read from the checkpoint
            runner.failed(exc)
