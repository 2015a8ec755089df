"""Alerts worker settings (env prefix ``ALERTS_``)."""

from __future__ import annotations

import socket
from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import CommonSettings


class AlertsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_", env_file=".env", env_ignore_empty=True, extra="ignore")

    instance: str = Field(
        default_factory=socket.gethostname,
        description="Consumer name in the group; stable across restarts so own pending entries resume.",
    )
    read_count: int = Field(500, ge=1, description="Entries per XREADGROUP call.")
    block_ms: int = Field(1000, ge=1, description="XREADGROUP block timeout (also how fast a stop is noticed).")
    discover_interval_s: float = Field(5.0, gt=0, description="SCAN for new metric streams this often.")
    rules_reload_s: float = Field(30.0, gt=0, description="Reload rules this often even without a notice.")
    group_start_id: str = Field("0", description="Where a new consumer group starts: '0' (retained history) or '$'.")
    claim_min_idle_ms: int = Field(60_000, ge=0, description="XAUTOCLAIM entries idle at least this long.")
    claim_interval_s: float = Field(30.0, gt=0)
    max_deliveries: int = Field(5, ge=1, description="A metric delivered this many times without success is dead-lettered.")
    retry_backoff_s: float = Field(1.0, ge=0, description="Pause after a failed batch before retrying it.")
    webhook_secret: SecretStr | None = Field(None, description="Global HMAC secret when a channel names no secret_ref.")
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(5, ge=1)
    webhook_backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles per attempt.")
    webhook_backoff_max_s: float = Field(30.0, ge=0)
    delivery_concurrency: int = Field(8, ge=1)
    delivery_queue_size: int = Field(10_000, ge=1)
    outbox_interval_s: float = Field(30.0, gt=0, description="Re-scan the events table for undelivered events.")
    prometheus_port: int = Field(9104, ge=0, le=65535, description="Port of /metrics; 0 disables it.")


@lru_cache
def get_alerts_settings() -> AlertsSettings:
    return AlertsSettings()
