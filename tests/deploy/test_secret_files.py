"""<NAME>_FILE secrets (Docker/Kubernetes) resolved into settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api.settings import ApiSettings
from shared.config import CommonSettings, load_secret_files
from shared.errors import ConfigError


def _secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value)
    return str(path)


def test_file_values_reach_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv (not delenv) so monkeypatch restores whatever load_secret_files writes into os.environ
    for name in ("REDIS_URL", "DATABASE_URL", "API_TOKEN"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("REDIS_URL_FILE", _secret(tmp_path, "redis", "redis://:s3cret@redis.internal:6380/2\n"))
    monkeypatch.setenv("DATABASE_URL_FILE", _secret(tmp_path, "db", "postgresql://u:p@db.internal:5433/pairs\n"))
    monkeypatch.setenv("API_TOKEN_FILE", _secret(tmp_path, "token", "tok-123\r\n"))
    settings = ApiSettings()
    assert settings.redis_dsn == "redis://:s3cret@redis.internal:6380/2"
    assert settings.database_dsn == "postgresql://u:p@db.internal:5433/pairs"
    assert settings.token is not None and settings.token.get_secret_value() == "tok-123"
    assert "s3cret" not in repr(settings)
    # a second construction (the variable is now set to the same value) is fine
    assert CommonSettings().redis_dsn == "redis://:s3cret@redis.internal:6380/2"


def test_environment_is_restored_after_the_previous_test() -> None:
    import os

    assert "s3cret" not in os.environ.get("REDIS_URL", "")


def test_only_secret_like_names_are_resolved(tmp_path: Path) -> None:
    env = {"INGEST_REPLAY_FILE": _secret(tmp_path, "replay.csv", "1,2,3"), "SOME_TOKEN_FILE": _secret(tmp_path, "t", "x")}
    assert load_secret_files(env) == ["SOME_TOKEN"]
    assert "INGEST_REPLAY" not in env and env["SOME_TOKEN"] == "x"


@pytest.mark.parametrize(
    ("env_extra", "content", "message"),
    [
        ({}, None, "cannot read the secret file"),
        ({}, "", "secret file is empty"),
        ({"DATABASE_URL": "postgresql://other/x"}, "postgresql://a/b", "set only one"),
    ],
)
def test_bad_secret_files_fail_fast(tmp_path: Path, env_extra: dict, content: str | None, message: str) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    env = {"DATABASE_URL_FILE": str(path), **env_extra}
    with pytest.raises(ConfigError, match=message):
        load_secret_files(env)
