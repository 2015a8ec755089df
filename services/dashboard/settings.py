"""Dashboard settings (env prefix ``DASHBOARD_``). The dashboard talks to the gateway only."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.config import CommonSettings


class DashboardSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", env_file=".env", env_ignore_empty=True, extra="ignore")

    gateway_url: str = Field("http://127.0.0.1:8000", description="Base URL of the FastAPI gateway.")
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)
    token: SecretStr | None = Field(None, description="Sent as X-API-Token (needed for writes: alerts, uploads).")
    request_timeout_s: float = Field(3.0, gt=0, description="Timeout of ordinary gateway reads (keeps callbacks short).")
    compute_timeout_s: float = Field(60.0, gt=0, description="Timeout of analysis / backtest / screen requests.")
    refresh_ms: int = Field(1000, ge=200, description="Live refresh interval of the pair view.")
    max_points: int = Field(2000, ge=100, le=20_000, description="Points per trace before downsampling.")
    live_relay: bool = Field(True, description="Follow the gateway's live WebSocket (else poll HTTP only).")
    debug: bool = False

    @field_validator("gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("gateway_url must start with http:// or https://")
        return value


@lru_cache
def get_dashboard_settings() -> DashboardSettings:
    return DashboardSettings()
