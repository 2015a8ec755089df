"""The gateway's Prometheus registry: shared pipeline metrics plus request latency and Redis-derived gauges.

Gauges that describe Redis (stream lag, ingest rate, heartbeat age, dead letters) are refreshed when
``/metrics`` is scraped, so they cost nothing between scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.api.system_status import SystemStatus
from shared.observability import LATENCY_BUCKETS_S, ServiceMetrics, new_registry

REQUEST_LATENCY = "pairs_api_request_duration_seconds"  # labels: method, route (template), status
INGEST_RATE = "pairs_ingest_ticks_per_second"  # ticks added to a tick stream between two scrapes
HEARTBEAT_AGE = "pairs_worker_heartbeat_age_seconds"  # labels: service, instance
DEADLETTER_SIZE = "pairs_deadletter_entries"  # labels: group
LIVE_CLIENTS = "pairs_api_live_clients"  # open WebSocket/SSE relays
LIVE_DROPPED = "pairs_api_live_clients_dropped_total"  # relays closed because the client was too slow


@dataclass(frozen=True)
class ApiMetrics:
    registry: CollectorRegistry
    service: ServiceMetrics
    request_latency: Histogram
    ingest_rate: Gauge
    heartbeat_age: Gauge
    deadletter_size: Gauge
    live_clients: Gauge
    live_dropped: Counter

    @classmethod
    def create(cls) -> ApiMetrics:
        reg = new_registry()
        return cls(
            registry=reg,
            service=ServiceMetrics.create(reg),
            request_latency=Histogram(REQUEST_LATENCY, "HTTP request duration, seconds.",
                                      ("method", "route", "status"), registry=reg, buckets=LATENCY_BUCKETS_S),
            ingest_rate=Gauge(INGEST_RATE, "Ticks per second added to a tick stream since the previous scrape.",
                              ("instrument",), registry=reg),
            heartbeat_age=Gauge(HEARTBEAT_AGE, "Seconds since a service instance last renewed its heartbeat.",
                                ("service", "instance"), registry=reg),
            deadletter_size=Gauge(DEADLETTER_SIZE, "Entries in a dead-letter stream.", ("group",), registry=reg),
            live_clients=Gauge(LIVE_CLIENTS, "Open live relays (WebSocket and SSE).", registry=reg),
            live_dropped=Counter(LIVE_DROPPED.removesuffix("_total"), "Live relays closed because the client fell behind.",
                                 registry=reg),
        )  # fmt: skip

    def refresh(self, status: SystemStatus, ingest_rates: dict[str, float]) -> None:
        """Replace the Redis-derived gauges (label sets that disappeared are removed)."""
        self.service.stream_lag.clear()
        self.service.stream_pending.clear()
        for g in status.lag:
            self.service.stream_lag.labels(stream=g["stream"], group=g["group"]).set(g["lag"])
            self.service.stream_pending.labels(stream=g["stream"], group=g["group"]).set(g["pending"])
        self.heartbeat_age.clear()
        for w in status.workers:
            if w["age_s"] is not None:
                self.heartbeat_age.labels(service=w["service"], instance=w["instance"]).set(w["age_s"])
        self.deadletter_size.clear()
        for group, n in status.deadletters.items():
            self.deadletter_size.labels(group=group).set(n)
        self.ingest_rate.clear()
        for inst, rate in ingest_rates.items():
            self.ingest_rate.labels(instrument=inst).set(rate)


class IngestRates:
    """Ticks/s per stream from Redis 7's ``entries-added`` counter, differenced between two scrapes."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, float]] = {}

    def update(self, counts: dict[str, int], now: float) -> dict[str, float]:
        rates = {}
        for name, added in counts.items():
            prev = self._last.get(name)
            if prev is not None and now > prev[1] and added >= prev[0]:
                rates[name] = (added - prev[0]) / (now - prev[1])
            self._last[name] = (added, now)
        return rates
