"""Prometheus metrics shared by every service: names as constants, one factory, one exporter.

Services build their metrics with ``ServiceMetrics.create(registry)`` and expose them with
``start_metrics_server(port, registry)`` (workers) or the api's ``/metrics`` route (which renders
``generate_latest(registry)``). Prometheus adds ``job``/``instance`` labels when it scrapes, so no
metric carries a service label of its own. Names follow Prometheus conventions: base units
(seconds), ``_total`` on counters. Label values must come from small sets (an instrument, a pair,
a timeframe, an outcome), never from free text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# --- metric names (as exposed; other services and the Grafana dashboard refer to these) -------
TICKS_IN = "pairs_ticks_in_total"  # ticks received from a feed (labels: instrument)
TICKS_OUT = "pairs_ticks_out_total"  # ticks published to a tick stream (labels: instrument)
PUBLISH_LATENCY = "pairs_publish_latency_seconds"  # exchange event time -> XADD acknowledged
STREAM_LAG = "pairs_stream_lag_entries"  # entries not yet delivered to a group (labels: stream, group)
STREAM_PENDING = "pairs_stream_pending_entries"  # delivered but unacked (labels: stream, group)
BARS_WRITTEN = "pairs_bars_written_total"  # bar rows upserted (labels: timeframe)
METRICS_WRITTEN = "pairs_metrics_written_total"  # pair metric rows upserted (labels: timeframe)
ALERT_EVALUATIONS = "pairs_alert_evaluations_total"  # rule evaluations
ALERT_FIRINGS = "pairs_alert_firings_total"  # alert events emitted (labels: pair)
WEBHOOK_OUTCOMES = "pairs_webhook_deliveries_total"  # webhook attempts (labels: outcome)
RECONNECTS = "pairs_feed_reconnects_total"  # feed connection re-established (labels: feed)
GAPS_FILLED = "pairs_gaps_filled_total"  # trades recovered by REST backfill (labels: instrument)
DB_WRITE_LATENCY = "pairs_db_write_latency_seconds"  # one batch write incl. commit (labels: table)
DEADLETTERED = "pairs_deadlettered_total"  # entries moved to a dead-letter stream (labels: group)
TICK_TO_ALERT_LATENCY = "pairs_tick_to_alert_latency_seconds"  # last tick event time -> alert emitted

# Allowed values of the ``outcome`` label of WEBHOOK_OUTCOMES.
WEBHOOK_DELIVERED = "delivered"
WEBHOOK_RETRIED = "retried"
WEBHOOK_FAILED = "failed"

# Latency buckets: sub-millisecond Redis round trips up to multi-second stalls.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def new_registry() -> CollectorRegistry:
    """A registry of its own (tests and embedded runs must not share the global default)."""
    return CollectorRegistry(auto_describe=True)


def _counter_base(name: str) -> str:
    # prometheus_client appends "_total" itself; passing the bare name keeps the exposed name exact.
    return name.removesuffix("_total")


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    """Every metric of the pipeline, registered on one registry. A service uses the ones it needs."""

    registry: CollectorRegistry
    ticks_in: Counter
    ticks_out: Counter
    publish_latency: Histogram
    stream_lag: Gauge
    stream_pending: Gauge
    bars_written: Counter
    metrics_written: Counter
    alert_evaluations: Counter
    alert_firings: Counter
    webhook_outcomes: Counter
    reconnects: Counter
    gaps_filled: Counter
    db_write_latency: Histogram
    deadlettered: Counter
    tick_to_alert_latency: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ServiceMetrics:
        reg = registry if registry is not None else new_registry()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(_counter_base(name), doc, labels, registry=reg)

        def histogram(name: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
            return Histogram(name, doc, labels, registry=reg, buckets=LATENCY_BUCKETS_S)

        return cls(
            registry=reg,
            ticks_in=counter(TICKS_IN, "Ticks received from a feed.", ("instrument",)),
            ticks_out=counter(TICKS_OUT, "Ticks published to a tick stream.", ("instrument",)),
            publish_latency=histogram(PUBLISH_LATENCY, "Exchange event time to stream publish, seconds."),
            stream_lag=Gauge(STREAM_LAG, "Entries not yet delivered to a consumer group.", ("stream", "group"), registry=reg),
            stream_pending=Gauge(
                STREAM_PENDING, "Entries delivered to a group but not acknowledged.", ("stream", "group"), registry=reg
            ),
            bars_written=counter(BARS_WRITTEN, "Bar rows upserted.", ("timeframe",)),
            metrics_written=counter(METRICS_WRITTEN, "Pair metric rows upserted.", ("timeframe",)),
            alert_evaluations=counter(ALERT_EVALUATIONS, "Alert rule evaluations."),
            alert_firings=counter(ALERT_FIRINGS, "Alert events emitted.", ("pair",)),
            webhook_outcomes=counter(WEBHOOK_OUTCOMES, "Webhook delivery attempts by outcome.", ("outcome",)),
            reconnects=counter(RECONNECTS, "Feed reconnections.", ("feed",)),
            gaps_filled=counter(GAPS_FILLED, "Trades recovered by REST backfill.", ("instrument",)),
            db_write_latency=histogram(DB_WRITE_LATENCY, "One batch database write incl. commit, seconds.", ("table",)),
            deadlettered=counter(DEADLETTERED, "Entries moved to a dead-letter stream.", ("group",)),
            tick_to_alert_latency=histogram(TICK_TO_ALERT_LATENCY, "Last tick event time to alert emitted, seconds."),
        )


def start_metrics_server(port: int, registry: CollectorRegistry | None = None, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread; returns the server (``.server_port``, ``.shutdown()``).

    Port 0 picks a free port (tests). Workers call this once at start when their metrics port is set.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be within 0..65535, got {port}")
    kwargs: dict[str, Any] = {"addr": addr}
    if registry is not None:
        kwargs["registry"] = registry
    server, _thread = start_http_server(port, **kwargs)
    return server


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The exposition text and its content type (for the api's ``/metrics`` route)."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _decode(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def group_lag(client: redis.Redis, stream: str, group: str, *, scan_cap: int = 10_000) -> tuple[int, int] | None:
    """(lag, pending) of one consumer group, or None when the stream or group does not exist.

    Redis 7 reports ``lag`` in XINFO GROUPS; when it cannot (Redis 6.2, or after deletions) the
    undelivered entries are counted with XRANGE, capped at ``scan_cap`` so a huge backlog stays cheap.
    """
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    for info in groups:
        info = {_decode(k): _decode(v) for k, v in info.items()}
        if info.get("name") != group:
            continue
        pending = int(info.get("pending") or 0)
        lag = info.get("lag")
        if lag is None:
            last = info.get("last-delivered-id") or "0-0"
            lag = len(client.xrange(stream, min=f"({last}", max="+", count=scan_cap))
        return int(lag), pending
    return None


def update_stream_gauges(metrics: ServiceMetrics, client: redis.Redis, stream_groups: list[tuple[str, str]]) -> None:
    """Refresh the lag and pending gauges for each (stream, group); missing groups are skipped."""
    for stream, group in stream_groups:
        found = group_lag(client, stream, group)
        if found is None:
            continue
        lag, pending = found
        metrics.stream_lag.labels(stream=stream, group=group).set(lag)
        metrics.stream_pending.labels(stream=stream, group=group).set(pending)
