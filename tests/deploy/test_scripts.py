"""The deployment's shell scripts parse with the shell that runs them (render.sh and the image's entrypoint
are POSIX sh: the nginx image has no bash)."""

import subprocess

import pytest

from tests.deploy.conftest import ROOT

POSIX = [
    "nginx/render.sh",
    "docker/entrypoint.sh",
    "docker/base/nginx/entrypoint.sh",  # the stand-ins mirror the official images' sh entrypoints
    "docker/base/redis/entrypoint.sh",
]
BASH = [
    "scripts/stack-up.sh",
    "scripts/stack-down.sh",
    "scripts/stack-ctl.sh",
    "scripts/stack-lib.sh",
    "scripts/make-env.sh",
    "scripts/ensure-services.sh",
    "scripts/ensure-bench-tools.sh",
    "mysql-init/10-cloudeye-app-user.sh",
    "scripts/base-images.sh",
    "scripts/docker-lib.sh",
    "scripts/ensure-docker.sh",
    "scripts/with-docker.sh",
    "docker/base/mysql/entrypoint.sh",
]


@pytest.mark.parametrize("script", POSIX + BASH)
def test_script_parses(script):
    shell = "sh" if script in POSIX else "bash"
    result = subprocess.run([shell, "-n", str(ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", POSIX)
def test_posix_scripts_use_no_bashisms(script):
    text = (ROOT / script).read_text()
    assert text.startswith("#!/bin/sh\n")
    for bashism in ("[[", "function ", "local ", "$'", "<<<", "${!"):
        assert bashism not in text, f"{script}: {bashism!r}"


# Sourced, never executed: stack-lib.sh by the other scripts, the mysql-init file by the mysql image.
SOURCED = {"scripts/stack-lib.sh", "scripts/docker-lib.sh", "mysql-init/10-cloudeye-app-user.sh"}


def test_executables_are_executable():
    for script in POSIX + [s for s in BASH if s not in SOURCED]:
        assert (ROOT / script).stat().st_mode & 0o111, script
