"""Helpers for the static deployment checks: compose variable interpolation and Prometheus metric names.

There is no Docker engine (nor compose plugin) on the CI machine, so ``docker compose config`` cannot
run; these helpers reproduce the parts of it the tests rely on, following the Compose specification's
interpolation rules (``$$`` escape, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``${VAR?error}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_DEV = REPO / "compose.dev.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "deploy" / "Dockerfile"

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class InterpolationError(ValueError):
    pass


def referenced_variables(text: str) -> set[str]:
    return {m.group("name") for m in _VAR.finditer(text) if m.group("name")}


def required_variables(text: str) -> set[str]:
    return {m.group("name") for m in _VAR.finditer(text) if m.group("op") in (":?", "?")}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in ("-", ":-"):
            return arg if missing else str(current)
        if op in ("?", ":?"):
            if missing:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return str(current)
        return "" if current is None else str(current)

    return _VAR.sub(sub, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


def env_example_values() -> dict[str, str]:
    """KEY=VALUE lines of .env.example (comments and blanks skipped), like compose's .env parser."""
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example line without '=': {line!r}"
        out[key.strip()] = value
    return out


def environment_dict(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def exposed_metric_names(*registries: CollectorRegistry) -> set[str]:
    """Every series name a scrape can show for these registries (counter ``_total``, histogram parts)."""
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names |= {f"{family.name}_total", f"{family.name}_created"}
            elif family.type == "histogram":
                names |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum", family.name}
            else:
                names.add(family.name)
    return names


_PROMQL_WORDS = {"sum", "max", "min", "avg", "by", "without", "rate", "increase", "histogram_quantile", "or",
                 "and", "unless", "le", "on", "ignoring", "count", "irate"}


def promql_metric_names(expr: str) -> Iterator[str]:
    """Identifiers in a PromQL expression that name series (not functions, keywords or label names)."""
    no_labels = re.sub(r"\{[^}]*\}", "", expr)
    no_grouping = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", no_labels)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_grouping)
    for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", no_ranges):
        if token not in _PROMQL_WORDS:
            yield token
