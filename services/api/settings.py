"""Gateway settings (env prefix ``API_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.config import CommonSettings


class ApiSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", env_ignore_empty=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token: SecretStr | None = Field(None, description="Token required in the X-API-Token header on writes.")
    protect_reads: bool = Field(False, description="Require the token on reads too.")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins (no wildcard).")
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest JSON request body accepted.")
    max_upload_bytes: int = Field(200 * 1_048_576, gt=0, description="Largest CSV upload accepted.")
    db_pool_size: int = Field(8, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)
    compute_timeout_s: float = Field(60.0, gt=0, description="Time bound of one analysis/backtest/screen request.")
    compute_threads: int = Field(2, ge=1, le=64, description="Threads running heavy analytics at once.")
    max_series_points: int = Field(200_000, ge=100, description="Largest series accepted by the analysis endpoints.")
    live_max_clients: int = Field(1000, ge=1, le=9000, description="Open live relays at most (each holds a Redis connection).")
    live_queue_size: int = Field(1000, ge=1, description="Frames buffered per live client before it is dropped.")
    live_slow_grace_s: float = Field(2.0, gt=0, description="A live client whose queue stays full this long is dropped.")
    live_heartbeat_s: float = Field(15.0, gt=0, description="Heartbeat frame interval on an idle live connection.")
    live_block_ms: int = Field(1000, ge=1, description="XREAD BLOCK of a live relay (bounds shutdown latency).")
    live_batch: int = Field(500, ge=1, description="Entries read per XREAD of a live relay.")
    export_fetch_rows: int = Field(5000, ge=100, description="Rows fetched per round trip by CSV export cursors.")


    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        # credentials are allowed, and a wildcard origin with credentials would let any site act as the user
        if any(o.strip() == "*" for o in value):
            raise ValueError("list the allowed origins explicitly; '*' is not accepted")
        return [o.strip().rstrip("/") for o in value if o.strip()]


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
