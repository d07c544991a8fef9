#!/usr/bin/env python3
"""Write constraints.txt: the exact versions, taken from the running virtualenv, of cloudeye's runtime
dependencies and everything they pull in. The image (Dockerfile) and `make venv` install with
`-c constraints.txt`, so a build tomorrow gets what the tests ran with today. Run with the venv's
python after changing dependencies: `make lock`."""

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str]) -> dict[str, str]:
    environment = default_environment()
    pinned: dict[str, str] = {}
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonical(requirement.name)
        if name in pinned:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is not installed in this environment: run make venv first")
        pinned[name] = distribution.version
        for text in distribution.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({**environment, "extra": ""}):
                pending.append(dependency)
    return pinned


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = closure(project["dependencies"])
    lines = [
        "# Exact versions of the runtime dependencies (and theirs) that the tests ran with.",
        "# Written by scripts/lock-constraints.py (make lock); used by the Dockerfile and make venv.",
        *(f"{name}=={version}" for name, version in sorted(pinned.items())),
    ]
    (ROOT / "constraints.txt").write_text("\n".join(lines) + "\n")
    print(f"constraints.txt: {len(pinned)} packages")


if __name__ == "__main__":
    main()
