"""Gateway settings (env prefix ``API_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
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


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
