"""Static checks of docker-compose.yml, compose.dev.yml, .env.example, Prometheus and Grafana provisioning.

These are the rules `docker compose config` and a reviewer would apply; the CI machine has no Docker
engine, so the files are parsed with PyYAML and checked here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import COMMANDS
from tests.deploy.compose_rules import (
    COMPOSE,
    COMPOSE_DEV,
    ENV_EXAMPLE,
    REPO,
    InterpolationError,
    env_example_values,
    environment_dict,
    exposed_metric_names,
    interpolate,
    interpolate_tree,
    promql_metric_names,
    referenced_variables,
    required_variables,
)

APP_IMAGE_SERVICES = {"migrate", "ingest", "analytics", "analytics-desk", "alerts", "api", "dashboard"}
WORKERS = {"ingest", "analytics", "analytics-desk", "alerts", "api", "dashboard"}
PUBLISHED = {"api": 8000, "dashboard": 8050}
REQUIRED_SECRETS = {"REDIS_PASSWORD", "POSTGRES_PASSWORD", "API_TOKEN"}
SECRETS_FILLED = {name: f"test-{name.lower()}" for name in REQUIRED_SECRETS}


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate_tree(_load(COMPOSE), {**env_example_values(), **SECRETS_FILLED})


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_expected_services(services: dict) -> None:
    assert set(services) == APP_IMAGE_SERVICES | {"redis", "timescaledb", "prometheus", "grafana"}


def test_every_service_has_an_image_or_build_and_pinned_third_party_tags(services: dict) -> None:
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if name in APP_IMAGE_SERVICES:
            assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
            continue
        repo, _, tag = svc["image"].rpartition(":")
        assert repo and tag and tag != "latest" and any(c.isdigit() for c in tag), f"{name}: unpinned {svc['image']}"
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["redis"]["image"].startswith("redis:7")


def test_app_commands_are_pairs_subcommands(services: dict) -> None:
    for name in APP_IMAGE_SERVICES:
        command = services[name]["command"]
        assert isinstance(command, list) and command[0] in COMMANDS, f"{name}: {command}"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["analytics"]["command"] == ["analytics", "--auto"]
    assert services["analytics-desk"]["command"][:2] == ["analytics", "--pairs"]
    assert "~" in services["analytics-desk"]["command"][2]
    assert "command" in services["redis"]


def test_healthchecks_everywhere(services: dict) -> None:
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if check.get("disable"):
            assert svc.get("restart") == "no", f"{name}: only one-shot services may disable the healthcheck"
            continue
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        if name in WORKERS:
            assert check["test"][1:] == ["pairs", services[name]["command"][0], "--check"], name
    assert "pg_isready" in services["timescaledb"]["healthcheck"]["test"][1]
    assert "redis-cli ping" in services["redis"]["healthcheck"]["test"][1]


def test_depends_on_targets_exist_and_conditions_hold(services: dict) -> None:
    for name, svc in services.items():
        for target, spec in (svc.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert not services[target]["healthcheck"].get("disable"), f"{name} waits on {target}'s health"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must be one-shot"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}")
    for name in WORKERS - {"dashboard"}:
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == deps["timescaledb"]["condition"] == "service_healthy", name
    assert services["dashboard"]["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_no_dependency_cycle(services: dict) -> None:
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        assert state.get(node) != "open", f"cycle: {' -> '.join(path + [node])}"
        if state.get(node) == "done":
            return
        state[node] = "open"
        for target in services[node].get("depends_on") or {}:
            visit(target, path + [node])
        state[node] = "done"

    for name in services:
        visit(name, [])


def test_only_gateway_and_dashboard_publish_ports(services: dict) -> None:
    for name, svc in services.items():
        ports = svc.get("ports") or []
        if name not in PUBLISHED:
            assert not ports and "expose" not in svc, f"{name} must not publish ports"
            continue
        assert len(ports) == 1 and ports[0].endswith(f":{PUBLISHED[name]}"), f"{name}: {ports}"


def test_scalable_analytics(services: dict) -> None:
    for name in ("analytics", "analytics-desk"):
        svc = services[name]
        assert "container_name" not in svc and "ports" not in svc and "hostname" not in svc, name
    assert services["analytics-desk"]["profiles"] == ["desk"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["observability"]
    assert "profiles" not in services["analytics"]


def test_restart_policies_and_resource_limits(services: dict) -> None:
    for name, svc in services.items():
        assert svc["restart"] in ("unless-stopped", "always", "no"), name
        if svc["restart"] == "no":
            assert name == "migrate"
        limits = svc["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and limits["memory"], name


def test_volumes_and_networks_are_declared(compose: dict, services: dict) -> None:
    declared_volumes = set(compose["volumes"])
    used_named = set()
    for name, svc in services.items():
        for mount in svc.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind source {source} missing"
            else:
                used_named.add(source)
        for net in svc.get("networks") or []:
            assert net in compose["networks"], f"{name}: undeclared network {net}"
    assert used_named == declared_volumes
    assert services["timescaledb"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert compose["networks"]["backend"]["internal"] is True
    for store in ("redis", "timescaledb"):
        assert services[store]["networks"] == ["backend"]
    assert services["dashboard"]["networks"] == ["edge"], "the dashboard reads only the gateway"


def test_redis_persistence_and_auth(services: dict) -> None:
    command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in command and "--requirepass" in command
    assert "--maxmemory-policy noeviction" in command


def test_app_services_share_connection_settings(services: dict) -> None:
    for name in APP_IMAGE_SERVICES - {"dashboard"}:
        env = environment_dict(services[name])
        assert env["REDIS_URL"] == f"redis://:{SECRETS_FILLED['REDIS_PASSWORD']}@redis:6379/0", name
        assert env["DATABASE_URL"].startswith(f"postgresql://pairs:{SECRETS_FILLED['POSTGRES_PASSWORD']}@timescaledb:5432/")
    for name in WORKERS:
        assert environment_dict(services[name])["PAIRS_SERVICE"] == services[name]["command"][0], name
    assert environment_dict(services["dashboard"])["DASHBOARD_GATEWAY_URL"] == "http://api:8000"


def test_every_variable_is_documented_and_every_documented_one_used() -> None:
    text = COMPOSE.read_text() + COMPOSE_DEV.read_text()
    referenced = referenced_variables(text)
    documented = set(env_example_values())
    assert referenced - documented == set(), "undocumented in .env.example"
    assert documented - referenced == set(), "documented but unused"
    assert required_variables(COMPOSE.read_text()) == REQUIRED_SECRETS


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_missing_required_variable_fails_fast(missing: str) -> None:
    env = {**env_example_values(), **SECRETS_FILLED, missing: ""}
    with pytest.raises(InterpolationError, match=missing):
        interpolate_tree(_load(COMPOSE), env)


def test_interpolation_rules() -> None:
    assert interpolate("a${X:-d}b", {}) == "adb"
    assert interpolate("${X:-d}", {"X": ""}) == "d"
    assert interpolate("${X-d}", {"X": ""}) == ""
    assert interpolate("$${X}", {"X": "v"}) == "${X}"
    with pytest.raises(InterpolationError, match="need it"):
        interpolate("${X:?need it}", {"X": ""})


def test_env_example_has_no_real_secrets() -> None:
    values = env_example_values()
    for name in REQUIRED_SECRETS | {"GRAFANA_ADMIN_PASSWORD", "ALERTS_WEBHOOK_SECRET"}:
        assert values[name] == "", f"{name} must be empty in the example"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_dev_overlay_binds_loopback_and_changes_no_structure() -> None:
    base, dev = _load(COMPOSE), _load(COMPOSE_DEV)
    assert set(dev["services"]) <= set(base["services"])
    for name, svc in dev["services"].items():
        for port in svc.get("ports") or []:
            assert port.startswith("127.0.0.1:"), f"{name}: dev port {port} must bind loopback"
        assert not {"image", "build", "depends_on", "networks"} & set(svc), f"{name}: overlay changes structure"
    assert dev["services"]["ingest"]["command"] == ["ingest", "--simulate"]
    assert not (REPO / "docker-compose.override.yml").exists(), "an override file would be merged silently"


def test_prometheus_scrapes_every_metrics_endpoint(services: dict) -> None:
    config = _load(REPO / "deploy" / "prometheus" / "prometheus.yml")
    targets: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets[host] = int(port)
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[name] = sd["port"]
    assert targets["api"] == int(environment_dict(services["api"])["API_PORT"])
    for name in ("analytics", "analytics-desk"):
        assert targets[name] == int(environment_dict(services[name])["ANALYTICS_METRICS_PORT"])
    assert targets["alerts"] == int(environment_dict(services["alerts"])["ALERTS_PROMETHEUS_PORT"])
    for host in targets:
        assert host == "127.0.0.1" or host in services, f"scrape target {host} is not a compose service"
    mounted = services["prometheus"]["volumes"][0].split(":")[0]
    assert (REPO / mounted).resolve() == (REPO / "deploy" / "prometheus" / "prometheus.yml").resolve()


def test_grafana_provisioning_and_dashboard_metric_names() -> None:
    from prometheus_client import REGISTRY

    import services.alerts.metrics  # noqa: F401  (registers the alerts counters on the default registry)
    from services.api.telemetry import ApiMetrics

    datasource = _load(REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = _load(REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "pairs.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"

    known = exposed_metric_names(ApiMetrics.create().registry, REGISTRY) | {"up"}
    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "pairs.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            for name in promql_metric_names(target["expr"]):
                assert name in known, f"panel {panel['title']!r} queries unknown metric {name}"


def test_promql_name_extraction() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(pairs_x_bucket{status=~"5.."}[5m])))'
    assert list(promql_metric_names(expr)) == ["pairs_x_bucket"]


def test_env_example_is_where_compose_reads_it() -> None:
    assert ENV_EXAMPLE.name == ".env.example" and ENV_EXAMPLE.parent == COMPOSE.parent
