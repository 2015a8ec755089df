"""Settings read from the environment (and an optional ``.env``).

Each service has one settings class deriving from ``ServiceSettings`` with its own env prefix
(``INGEST_``, ``ANALYTICS_``, ...); the connection settings below are shared and unprefixed.
Get them through the cached ``get_*`` helpers in each service, so tests can build their own.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError
from shared.streams import Keys

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    return (REPO_ROOT.parent / "shared" / "data").resolve()


# Docker/Kubernetes secrets: ``<NAME>_FILE`` names a file holding the value of ``<NAME>``. Only secret-like
# names are resolved, so ordinary path settings that happen to end in _FILE keep their meaning.
_SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]*(_URL|_TOKEN|_SECRET|_PASSWORD)$")


def load_secret_files(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy each secret file named by ``<NAME>_FILE`` into ``<NAME>`` (e.g. ``DATABASE_URL_FILE``).

    Returns the names set. Raises ConfigError for an unreadable or empty file, or when ``<NAME>`` is
    already set to a different value (two sources for one secret is a deployment mistake).
    """
    env = os.environ if environ is None else environ
    loaded = []
    for key in sorted(env):
        name = key.removesuffix("_FILE")
        if name == key or not _SECRET_NAME.match(name) or not env[key]:
            continue
        try:
            value = Path(env[key]).read_text().rstrip("\r\n")  # editors and `echo` add a newline
        except OSError as exc:
            raise ConfigError(f"{key}={env[key]}: cannot read the secret file ({exc.strerror})") from exc
        if not value:
            raise ConfigError(f"{key}={env[key]}: the secret file is empty")
        if env.get(name) and env[name] != value:
            raise ConfigError(f"both {name} and {key} are set, with different values: set only one")
        env[name] = value
        loaded.append(name)
    return loaded


class CommonSettings(BaseSettings):
    """Connections and names every service needs."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias="REDIS_URL",
        description="Redis URL; a password in it is redacted in logs and reprs.",
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/pairs"),
        validation_alias="DATABASE_URL",
        description="PostgreSQL/TimescaleDB URL (libpq form).",
    )
    key_prefix: str = Field("", validation_alias="PAIRS_KEY_PREFIX", description="Namespace for every Redis key.")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON", description="Structured JSON logs (false: plain text).")
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        validation_alias="PAIRS_DATA_DIR",
        description="Folder with the recorded Binance data (binance/trades, binance/klines, binance/ws).",
    )
    redis_timeout_s: float = Field(5.0, gt=0, validation_alias="REDIS_TIMEOUT_S")
    db_connect_timeout_s: float = Field(10.0, gt=0, validation_alias="DB_CONNECT_TIMEOUT_S")
    shutdown_grace_s: float = Field(10.0, ge=0, validation_alias="SHUTDOWN_GRACE_S")
    heartbeat_interval_s: float = Field(5.0, gt=0, validation_alias="HEARTBEAT_INTERVAL_S")

    def __init__(self, **values: Any) -> None:
        load_secret_files()  # before pydantic-settings reads the environment
        super().__init__(**values)

    @field_validator("database_url")
    @classmethod
    def _libpq_form(cls, v: SecretStr) -> SecretStr:
        # Accept SQLAlchemy-style URLs too; psycopg wants plain postgresql://.
        raw = v.get_secret_value()
        for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
            if raw.startswith(prefix):
                raw = "postgresql://" + raw[len(prefix):]
        return SecretStr(raw)

    @property
    def keys(self) -> Keys:
        return Keys(self.key_prefix)

    @property
    def redis_dsn(self) -> str:
        return self.redis_url.get_secret_value()

    @property
    def database_dsn(self) -> str:
        return self.database_url.get_secret_value()


def data_dir_or_none(settings: CommonSettings | None = None) -> Path | None:
    """The recorded-data folder if it exists (tests skip with a reason otherwise)."""
    path = Path(os.environ.get("PAIRS_DATA_DIR", "")) if os.environ.get("PAIRS_DATA_DIR") else None
    if path is None:
        path = (settings.data_dir if settings else _default_data_dir())
    return path if (path / "binance").is_dir() else None
