"""Write deploy/requirements.lock: the project's runtime dependency closure, pinned to the versions
installed in the current virtual environment.

    python deploy/lock.py            # rewrite the lock
    python deploy/lock.py --check    # exit 1 if the lock differs from the venv (CI / tests)

Only the ``[project] dependencies`` closure is pinned (no dev or embedded extras), for the linux
x86_64/aarch64 CPython 3.11 image, so the image installs exactly what the tests ran against.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "pairs-pipeline"
LOCK = Path(__file__).resolve().parent / "requirements.lock"
# The image's interpreter and platform, so markers resolve for the container, not this host.
TARGET = {**default_environment(), "python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux",
          "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**TARGET, "extra": extra}) for extra in (extras or {""}))


def closure(root: str = PROJECT) -> dict[str, str]:
    """name -> installed version for every runtime requirement reachable from ``root``."""
    pinned: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = metadata.distribution(name)
        if canonicalize_name(name) != canonicalize_name(root):
            pinned[canonicalize_name(name)] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if _applies(req, extras):
                todo.append((req.name, frozenset(req.extras)))
    return dict(sorted(pinned.items()))


def render(pins: dict[str, str]) -> str:
    header = [
        "# Runtime dependencies of pairs-pipeline, pinned from the development venv by deploy/lock.py.",
        "# Regenerate after changing pyproject.toml dependencies: python deploy/lock.py",
    ]
    return "\n".join(header + [f"{name}=={version}" for name, version in pins.items()]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render(closure())
    if args.check:
        current = LOCK.read_text() if LOCK.exists() else ""
        if current != text:
            print(f"{LOCK} is out of date: run python deploy/lock.py", file=sys.stderr)
            return 1
        return 0
    LOCK.write_text(text)
    print(f"wrote {LOCK} ({text.count('==')} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
