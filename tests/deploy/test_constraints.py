"""constraints.txt pins what the image installs: it must cover every runtime dependency, agree with
pyproject's ranges, and be what the tests run with (make venv installs with it)."""

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement

from tests.deploy.conftest import ROOT


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(pair) == 2 for pair in pairs), "every line is name==version"
    return {canonical(name): version for name, version in pairs}


def test_every_runtime_dependency_is_pinned_within_its_range():
    pinned = pins()
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(text)
        name = canonical(requirement.name)
        assert name in pinned, f"{requirement.name} is not in constraints.txt: run make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (text, pinned[name])


def test_the_tests_run_with_the_pinned_versions():
    for name, version in pins().items():
        assert metadata.version(name) == version, (
            f"{name}: installed {metadata.version(name)}, pinned {version}"
        )


def test_the_image_and_make_venv_install_with_the_constraints():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml constraints.txt ./" in dockerfile
    assert "pip install --no-cache-dir -c constraints.txt" in dockerfile
    assert "!constraints.txt" in (ROOT / ".dockerignore").read_text().splitlines()
    assert "pip install -q -c constraints.txt -e '.[dev]'" in (ROOT / "Makefile").read_text()
