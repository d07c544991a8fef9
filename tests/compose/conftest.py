"""The compose stack, built and booted for real on a Docker engine, once per session.

A copy of the checkout (tracked and new files, as `git ls-files` sees them) gets the README's Docker quick
start word for word: `make base-images` (the local stand-ins: no registry is reachable here), `make env`,
`make up`. Everything is its own: the compose project name (containers, network, volumes), the image tag
(cloudeye:e2e-<id>), a free published port. At the end, also when a test failed: `docker compose down
-v` for every project the suite made, its images and the layers its builds left are removed, the copy
deleted. The base images stay (built again only when their inputs change).

scripts/with-docker.sh (make test, make e2e) installs and starts the engine; without one the suite is
skipped, saying why.
"""

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
API = "/api/cloudeye/v1"
MAX_REPORT_BYTES = 1024 * 1024  # small, so the 413 test sends little; nginx allows this + 1 MiB
# The published port is reached through Docker's proxy, whose address (a private one on the project's
# network) nginx sees as the peer: trusted, so X-Forwarded-For names the client in the 403/429 tests.
TRUSTED_PROXIES = "172.16.0.0/12,192.168.0.0/16,10.0.0.0/8"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def read_env_file(path: Path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


@dataclass
class ComposeStack:
    directory: Path
    project: str
    port: int
    env: dict
    compose_command: list[str]
    outputs: dict = field(default_factory=dict)  # make target -> its output, for the tests that read it
    _token: str | None = field(default=None, repr=False)

    # --- commands, as an operator types them in the checkout --------------------------------------------
    def run(self, command: list[str], *, timeout: float = 600, check: bool = True, stdin=None, env=None):
        result = subprocess.run(
            command,
            cwd=self.directory,
            env=env or self.env,
            input=stdin,
            capture_output=True,
            timeout=timeout,
        )
        text = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        if check:
            assert result.returncode == 0, (
                f"{shlex.join(command)} exited {result.returncode}:\n{text[-6000:]}"
            )
        return result.returncode, text, result.stdout

    def make(self, *targets: str, timeout: float = 900, check: bool = True) -> tuple[int, str]:
        code, text, _ = self.run(["make", "--no-print-directory", *targets], timeout=timeout, check=check)
        return code, text

    def compose(self, *args: str, timeout: float = 300, check: bool = True, stdin=None, env=None):
        code, text, stdout = self.run(
            [*self.compose_command, *args], timeout=timeout, check=check, stdin=stdin, env=env
        )
        return code, text, stdout

    def shell(self, script: str, *, timeout: float = 300, stdin=None) -> bytes:
        """A line of the README, run by bash in the checkout (pipes, redirections, $(date ...))."""
        _, _, stdout = self.run(["bash", "-o", "pipefail", "-c", script], timeout=timeout, stdin=stdin)
        return stdout

    def containers(self, service: str) -> list[str]:
        _, _, stdout = self.compose("ps", "-q", service)
        return sorted(stdout.decode().split())

    def exec_python(self, service: str, code: str, *, timeout: float = 60, index: int | None = None) -> str:
        args = ["exec", "-T"] + (["--index", str(index)] if index else []) + [service, "python", "-c", code]
        _, _, stdout = self.compose(*args, timeout=timeout)
        return stdout.decode()

    # --- the database, as root inside the mysql container --------------------------------------------------
    def sql(self, query: str, project_env: dict | None = None) -> list[list[str]]:
        _, _, stdout = self.compose(
            "exec", "-T", "mysql", "sh", "-c", 'exec mysql -N -B -uroot -p"$MYSQL_ROOT_PASSWORD" "$MYSQL_DATABASE"',
            stdin=query.encode(), env=project_env,
        )  # fmt: skip
        return [line.split("\t") for line in stdout.decode().splitlines()]

    def dump(self, project_env: dict | None = None) -> str:
        """Schema and rows, ordered by primary key, without the dump's date: equal text, equal data."""
        _, _, stdout = self.compose(
            "exec", "-T", "mysql", "sh", "-c",
            'exec mysqldump --skip-dump-date --skip-comments --order-by-primary --skip-extended-insert '
            '-uroot -p"$MYSQL_ROOT_PASSWORD" "$MYSQL_DATABASE"',
            env=project_env, timeout=300,
        )  # fmt: skip
        return stdout.decode()

    def row_counts(self) -> dict[str, int]:
        tables = [row[0] for row in self.sql("SHOW TABLES")]
        counts = self.sql(" UNION ALL ".join(f"SELECT '{name}', COUNT(*) FROM `{name}`" for name in tables))
        return {name: int(count) for name, count in counts}

    # --- HTTP through nginx --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> str:
        return f"{self.url}{API}{path}"

    @property
    def admin_password(self) -> str:
        return read_env_file(self.directory / ".env")["CLOUDEYE_ADMIN_PASSWORD"]

    @property
    def token(self) -> str:
        """One admin login for the session (nginx and the app rate-limit logins)."""
        if self._token is None:
            response = requests.post(
                self.api("/users/login"),
                json={"username": "admin", "password": self.admin_password},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["token"]
        return self._token

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False


def checkout_copy(target: Path) -> None:
    """The files of the checkout a clone would have, plus new ones not yet committed (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():  # deleted in the work tree
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def compose_environment(directory: Path, project: str, port: int, tag: str) -> dict:
    """A clean environment for make and compose: nothing of the test session's settings (or of an outer
    make) reaches compose's interpolation; the project, port and tag are the suite's own."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "DOCKER_HOST", "DOCKER_CONFIG")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        COMPOSE=os.environ.get("COMPOSE", "docker compose"),
        COMPOSE_PROJECT_NAME=project,
        COMPOSE_FILE="compose.yaml:tests/compose/compose.target.yaml",
        CLOUDEYE_HTTP_PORT=str(port),
        CLOUDEYE_TAG=tag,
    )
    return env


def docker_unavailable_reason() -> str | None:
    reason = os.environ.get("CLOUDEYE_DOCKER_UNAVAILABLE")
    if reason:
        return reason
    if shutil.which("docker") is None:
        return "no docker command (make test and make e2e install Docker through scripts/with-docker.sh)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"no Docker engine answers ({info.stderr.strip()[:200]}); run through make test or make e2e"
    return None


def dangling_images() -> set[str]:
    return set(docker("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split())


def tear_down(stack: ComposeStack, projects: list[str], images_before: set[str]) -> None:
    """Everything the session made, even when it is being interrupted: a second Ctrl-C is ignored
    meanwhile, and the commands run in their own session, so the terminal's Ctrl-C does not reach them."""

    def run(command: list[str], env: dict | None = None) -> None:
        subprocess.run(command, cwd=stack.directory, env=env or stack.env, capture_output=True, timeout=300,
                       start_new_session=True)  # fmt: skip

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for project in projects:
            env = {**stack.env, "COMPOSE_PROJECT_NAME": project}
            run([*stack.compose_command, "down", "-v", "--remove-orphans", "--timeout", "10"], env)
        tag = stack.env["CLOUDEYE_TAG"]
        run(["docker", "image", "rm", f"cloudeye:{tag}", f"cloudeye-nginx:{tag}"])
        # The layers this run's builds left behind (the build stage's, untagged): not the base images.
        left = sorted(dangling_images() - images_before)
        if left:
            run(["docker", "image", "rm", *left])
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def stack():
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(f"!!! compose stack tests SKIPPED: {reason}")
    compose_command = shlex.split(os.environ.get("COMPOSE", "docker compose"))
    suffix = secrets.token_hex(3)
    directory = Path(tempfile.mkdtemp(prefix="cloudeye-e2e-")) / "cloudeye"
    directory.mkdir()
    checkout_copy(directory)
    project = f"cloudeye-e2e-{suffix}"
    env = compose_environment(directory, project, free_port(), f"e2e-{suffix}")
    instance = ComposeStack(directory, project, int(env["CLOUDEYE_HTTP_PORT"]), env, compose_command)
    images_before = dangling_images()
    try:
        # The README's quick start for a host without a registry, as typed: make base-images, make env
        # (which then leaves the .env make base-images wrote alone), make up.
        instance.outputs["base-images"] = instance.make("base-images", timeout=1800)[1]
        instance.outputs["env"] = instance.make("env")[1]
        assert "already exists: left untouched" in instance.outputs["env"]
        assert "MYSQL_IMAGE=cloudeye-base/mysql:bookworm" in (directory / ".env").read_text()
        # Settings the tests rely on, as an operator adds them to .env.
        with (directory / ".env").open("a") as env_file:
            env_file.write(
                "\n# tests/compose\n"
                f"MAX_REPORT_BYTES={MAX_REPORT_BYTES}\n"
                f"NGINX_REAL_IP_FROM={TRUSTED_PROXIES}\n"
                "GUNICORN_WORKERS=2\n"
            )
        started = time.monotonic()
        instance.outputs["up"] = instance.make("up", timeout=1800)[1]
        instance.outputs["up_seconds"] = round(time.monotonic() - started)
        instance.compose("up", "-d", "--wait", "target", timeout=300)
        yield instance
    finally:
        tear_down(instance, [project, f"{project}-restore"], images_before)
        shutil.rmtree(directory.parent, ignore_errors=True)
