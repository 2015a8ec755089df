"""How the test run finds Redis and PostgreSQL: environment, local servers, or testcontainers."""

from __future__ import annotations

import pytest
import yaml

from services.localrun import free_port
from tests import conftest
from tests.conftest import ServiceEndpoints, resolve_endpoints, tcp_reachable
from tests.deploy.compose_rules import COMPOSE


class Recorder:
    """Stands in for the Docker engine, which this machine does not have, and records what was started."""

    def __init__(self, engine: bool) -> None:
        self.engine = engine
        self.started: list[str] = []

    def available(self) -> bool:
        return self.engine

    def start(self, kind: str) -> tuple[str, object]:
        self.started.append(kind)
        return f"{kind}://container", _Stoppable(self)


class _Stoppable:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def stop(self) -> None:
        self.recorder.started.append("stopped")


def test_environment_wins_without_probing() -> None:
    probed: list[str] = []
    env = {"TEST_PG_ADMIN_URL": "postgresql://db/x", "TEST_REDIS_URL": "redis://r:1/0"}
    found = resolve_endpoints(env, lambda url, port: probed.append(url) or False, lambda: True, Recorder(True).start)
    assert (found.admin_url, found.redis_url) == ("postgresql://db/x", "redis://r:1/0")
    assert found.sources == {"postgres": "environment", "redis": "environment"} and probed == []


def test_local_servers_are_used_when_they_answer() -> None:
    docker = Recorder(True)
    found = resolve_endpoints({}, lambda url, port: True, docker.available, docker.start)
    assert found.sources == {"postgres": "local", "redis": "local"}
    assert found.admin_url == conftest.DEFAULT_ADMIN_URL and docker.started == []


def test_containers_only_for_what_is_missing_and_only_with_an_engine() -> None:
    docker = Recorder(True)
    found = resolve_endpoints({}, lambda url, port: port == 6379, docker.available, docker.start)
    assert found.sources == {"postgres": "testcontainers", "redis": "local"}
    assert found.admin_url == "postgres://container" and docker.started == ["postgres"]
    found.stop()
    assert docker.started == ["postgres", "stopped"] and found.containers == []

    no_engine = Recorder(False)
    with pytest.warns(UserWarning, match="no postgres or redis reachable and no Docker engine"):
        found = resolve_endpoints({}, lambda url, port: False, no_engine.available, no_engine.start)
    assert found.sources == {"postgres": "unreachable", "redis": "unreachable"} and no_engine.started == []


def test_tcp_probe_against_real_and_closed_ports() -> None:
    assert tcp_reachable(conftest.REDIS_URL, 6379)
    assert tcp_reachable(conftest.ADMIN_URL, 5432)
    assert not tcp_reachable(f"redis://127.0.0.1:{free_port()}/0", 6379)


def test_this_run_uses_servers_without_containers(service_endpoints: ServiceEndpoints) -> None:
    assert set(service_endpoints.sources.values()) <= {"environment", "local", "testcontainers"}
    assert service_endpoints.redis_url == conftest.REDIS_URL and service_endpoints.admin_url == conftest.ADMIN_URL


def test_container_images_match_compose() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["redis"]["image"] == conftest.TESTCONTAINERS_REDIS_IMAGE
    assert services["timescaledb"]["image"] == conftest.TESTCONTAINERS_TIMESCALE_IMAGE
