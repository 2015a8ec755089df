"""Ingest settings (env prefix ``INGEST_``); connection settings come unprefixed from CommonSettings."""

from __future__ import annotations

import socket
from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import CommonSettings
from shared.streams import TICK_RETENTION_SECONDS_DEFAULT


class IngestSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", env_file=".env", env_ignore_empty=True, extra="ignore")

    metrics_port: int | None = Field(None, ge=0, le=65535, description="Port of the Prometheus endpoint (None: off).")

    instance: str = Field(
        default_factory=socket.gethostname,
        description="Heartbeat instance name (default: the host name, so a container's healthcheck finds it).",
    )
    queue_size: int = Field(100_000, ge=1, description="Ticks buffered between sources and the Redis writer.")
    batch_size: int = Field(500, ge=1, le=100_000, description="Most XADDs per Redis pipeline.")
    tick_retention_s: int = Field(
        TICK_RETENTION_SECONDS_DEFAULT, ge=60, description="Tick streams are trimmed with MINID ~ now - this."
    )
    feed_status_ttl_s: int = Field(30, ge=2, description="Expiry of the feed status key (refreshed while running).")
    status_interval_s: float = Field(1.0, gt=0, description="How often replay/simulation refresh their feed status.")
    max_malformed_examples: int = Field(20, ge=0, description="Malformed lines kept (file, line, error) per replay.")
    simulate_seed: int = Field(7, description="Seed of the simulated feed's generator.")


@lru_cache
def get_ingest_settings() -> IngestSettings:
    return IngestSettings()
