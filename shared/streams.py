"""Every Redis stream, consumer group and key name, and the trim policy. No other module spells them.

All names live under a namespace prefix (setting ``PAIRS_KEY_PREFIX``, default empty) so that
several deployments or test runs can share one Redis.

| name | producer | consumers | retention |
| --- | --- | --- | --- |
| ``ticks:{instrument}`` | ingest | analytics (one group per pair) | MINID ~ now - tick_retention |
| ``metrics:{pair}`` | analytics (pair owner) | alerts, api relay, downstream groups | MAXLEN ~ metric_maxlen |
| ``gaps`` | ingest | api, ops | MAXLEN ~ 10 000 |
| ``alerts`` | alerts | api relay, downstream | MAXLEN ~ 100 000 |
| ``deadletter:{group}`` | any consumer | ops via api | MAXLEN ~ 10 000 |
| ``events:alert-rules-changed`` (pub/sub) | api | alerts worker (reloads rules) | none |
| ``alerts-published:{dedupe_key}`` | alerts | alerts (publish-once marker) | TTL 1 day |
"""

from __future__ import annotations

from dataclasses import dataclass

# Consumer groups. Analytics uses one group per pair on each leg's tick stream, because two pairs
# that share an instrument both need every tick of it (one shared group would split them).
ANALYTICS_GROUP_PREFIX = "analytics"
ALERTS_GROUP = "alerts"

# Trimming (approximate, ``~``, so Redis trims whole macro nodes cheaply).
TICK_RETENTION_SECONDS_DEFAULT = 6 * 3600
METRIC_STREAM_MAXLEN_DEFAULT = 200_000
GAP_STREAM_MAXLEN = 10_000
ALERT_STREAM_MAXLEN = 100_000
DEADLETTER_MAXLEN = 10_000

# How long the at-most-once publish markers of alert events live (far beyond any redelivery window).
ALERT_PUBLISHED_TTL_SECONDS = 86400

# Heartbeat keys expire if a service stops renewing them; `pairs <svc> --check` reads them.
HEARTBEAT_TTL_SECONDS = 15


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder bound to one namespace prefix."""

    prefix: str = ""

    def ticks(self, instrument: str) -> str:
        return f"{self.prefix}ticks:{instrument}"

    def metrics(self, pair: str) -> str:
        return f"{self.prefix}metrics:{pair}"

    def metrics_pattern(self) -> str:
        """SCAN pattern matching every pair's metric stream (the alerts worker discovers new pairs)."""
        return f"{self.prefix}metrics:*"

    @property
    def gaps(self) -> str:
        return f"{self.prefix}gaps"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    def deadletter(self, group: str) -> str:
        return f"{self.prefix}deadletter:{group}"

    def heartbeat(self, service: str, instance: str) -> str:
        return f"{self.prefix}heartbeat:{service}:{instance}"

    def heartbeat_pattern(self, service: str = "*") -> str:
        return f"{self.prefix}heartbeat:{service}:*"

    def lease(self, pair: str) -> str:
        """Owner of a pair (value: worker instance), SET NX with a TTL the owner renews."""
        return f"{self.prefix}lease:{pair}"

    @property
    def lease_pattern(self) -> str:
        return f"{self.prefix}lease:*"

    def fence(self, pair: str) -> str:
        """Fencing-token counter of a pair, INCRed on every lease acquisition (never expires)."""
        return f"{self.prefix}fence:{pair}"

    def member(self, service: str, instance: str) -> str:
        """Membership of a worker in its service's balancing pool (short TTL, renewed with the leases)."""
        return f"{self.prefix}member:{service}:{instance}"

    def member_pattern(self, service: str) -> str:
        return f"{self.prefix}member:{service}:*"

    def pair_of_lease_key(self, key: str) -> str:
        return key.removeprefix(f"{self.prefix}lease:")

    def deadletter_pattern(self) -> str:
        return f"{self.prefix}deadletter:*"

    def group_of_deadletter_key(self, key: str) -> str:
        return key.removeprefix(f"{self.prefix}deadletter:")

    def heartbeat_parts(self, key: str) -> tuple[str, str]:
        """Inverse of ``heartbeat``: (service, instance)."""
        service, _, instance = key.removeprefix(f"{self.prefix}heartbeat:").partition(":")
        return service, instance

    def feed_of_status_key(self, key: str) -> str:
        return key.removeprefix(f"{self.prefix}feed:")

    def feed_status(self, feed: str) -> str:
        return f"{self.prefix}feed:{feed}"

    @property
    def feed_status_pattern(self) -> str:
        return f"{self.prefix}feed:*"

    @property
    def pairs_changed_channel(self) -> str:
        """Pub/sub channel the api notifies when pair configuration changes."""
        return f"{self.prefix}events:pairs-changed"

    @property
    def alert_rules_changed_channel(self) -> str:
        """Pub/sub channel the api notifies when alert rules change (the alerts worker reloads)."""
        return f"{self.prefix}events:alert-rules-changed"

    def alert_published(self, dedupe_key: str) -> str:
        """Marker (SET NX with a TTL) making an alert's XADD to ``alerts`` happen at most once."""
        return f"{self.prefix}alerts-published:{dedupe_key}"

    def pattern(self) -> str:
        """Every key of this namespace (tests delete these afterwards)."""
        return f"{self.prefix}*"

    @staticmethod
    def analytics_group(pair: str) -> str:
        return f"{ANALYTICS_GROUP_PREFIX}:{pair}"
