"""Prometheus counters of the alerts worker (module level: one registration per process)."""

from __future__ import annotations

from prometheus_client import Counter

EVALUATIONS = Counter("pairs_alerts_evaluations_total", "Rule evaluations (one per rule per metric)")
METRICS_CONSUMED = Counter("pairs_alerts_metrics_total", "Metric entries consumed from the metric streams")
FIRINGS = Counter("pairs_alerts_firings_total", "Alert events newly recorded", ["kind"])
SUPPRESSED = Counter("pairs_alerts_suppressed_total", "Firings held back", ["reason"])
WEBHOOKS = Counter("pairs_alerts_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"])
DEADLETTERS = Counter("pairs_alerts_deadletters_total", "Metric entries moved to the dead-letter stream")
