"""The booted stack: `make stack` (scripts/stack-up.sh, as the Makefile target runs it) against a private
MariaDB and Redis, once per session; `make stack-down` and the servers' shutdown at the end, even when
something failed on the way.

It runs from a copy of the checkout inside a directory only its owner may enter (0700, like a fresh clone
in a home directory), with the stack's own files in the copy's `.stack/`: nginx's workers (www-data when
the tests run as root) must serve and buffer from somewhere they can reach whatever the checkout's
permissions."""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from services.config import API_PREFIX
from tests.stack.servers import MariaDB, Redis, free_port

ROOT = Path(__file__).resolve().parents[2]
API = API_PREFIX
DENIED_PEER = "127.0.0.2"  # a loopback address the deny list blocks
DENIED_FORWARDED = "203.0.113.9"  # a client address, behind the trusted proxy 127.0.0.1, that is denied
MAX_REPORT_BYTES = 1024 * 1024  # small, so the 413 test sends little; nginx allows this + 1 MiB


@dataclass
class Stack:
    root: Path
    directory: Path
    port: int
    api_port: int
    env: dict
    mariadb: MariaDB
    redis: Redis
    deny_file: Path
    admin_password: str = ""
    _token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> str:
        return f"{self.url}{API}{path}"

    @property
    def token(self) -> str:
        """One admin login for the session (logins are rate limited per address)."""
        if self._token is None:
            response = requests.post(
                self.api("/users/login"),
                json={"username": "admin", "password": self.admin_password},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["token"]
        return self._token

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def script(self, name: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.root / "scripts" / name), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pid(self, name: str) -> int:
        return int((self.directory / "run" / name).read_text().strip())

    def gunicorn_workers(self) -> set[int]:
        master = self.pid("gunicorn.pid")
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return {int(pid) for pid in children}

    def supervisor_status(self) -> str:
        return self.script("stack-ctl.sh", "status", timeout=30).stdout


def stack_environment(directory: Path, port: int, api_port: int, mariadb: MariaDB, redis: Redis, deny: Path):
    env = {
        key: value
        for key, value in os.environ.items()
        # The stack gets its own database, cache and secrets; nothing of the test run's may leak in.
        if not key.startswith(("CLOUDEYE_", "STACK_", "NGINX_", "GUNICORN_", "SYNC_", "LOGIN_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DATA_DIR", "LOG_DIR", "MAX_REPORT_BYTES"}
    }
    env.update(
        STACK_DIR=str(directory),
        STACK_PORT=str(port),
        STACK_API_PORT=str(api_port),
        STACK_MYSQL_PORT=str(mariadb.port),
        STACK_REDIS_PORT=str(redis.port),
        STACK_READY_TIMEOUT="120",
        CLOUDEYE_VENV=str(ROOT / ".venv"),
        MAX_REPORT_BYTES=str(MAX_REPORT_BYTES),
        NGINX_REAL_IP_FROM="127.0.0.1",
        NGINX_DENY_FILE=str(deny),
        GUNICORN_WORKERS="2",
        LOG_LEVEL="info",
    )
    return env


def private_checkout() -> Path:
    """A copy of this checkout's files (tracked and new, not ignored) in a fresh 0700 directory."""
    home = Path(tempfile.mkdtemp(prefix="cloudeye-home-"))  # mkdtemp makes it 0700
    assert home.stat().st_mode & 0o777 == 0o700
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    checkout = home / "cloudeye"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    return checkout


@pytest.fixture(scope="session")
def stack():
    if not (ROOT / ".venv" / "bin" / "gunicorn").exists():
        pytest.fail("the virtualenv is missing: make venv")
    # The servers' files: MariaDB and Redis run as whoever starts them, they need no more than this.
    directory = Path(tempfile.mkdtemp(prefix="cloudeye-stack-"))
    directory.chmod(0o755)
    checkout = private_checkout()
    mariadb = MariaDB(directory / "mariadb", free_port(13306, 13399))
    redis = Redis(directory / "redis", free_port(16379, 16399))
    for server in (mariadb, redis):
        server.directory.mkdir()
    port = free_port(18080, 18099)
    api_port = free_port(18100, 18199)
    deny = directory / "deny.conf"
    deny.write_text(f"# the stack tests' deny list\ndeny {DENIED_PEER};\ndeny {DENIED_FORWARDED};\n")
    stack_dir = checkout / ".stack"  # make stack's default place, inside the private checkout
    env = stack_environment(stack_dir, port, api_port, mariadb, redis, deny)
    instance = Stack(checkout, stack_dir, port, api_port, env, mariadb, redis, deny)
    try:
        mariadb.install()
        mariadb.start()
        redis.start()
        result = instance.script("stack-up.sh")
        assert result.returncode == 0, f"make stack failed:\n{result.stdout}\n{result.stderr}"
        instance.admin_password = (stack_dir / "admin_password").read_text().strip()
        yield instance
    finally:
        try:
            instance.script("stack-down.sh", timeout=120)
        finally:
            redis.stop()
            mariadb.stop()
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(checkout.parent, ignore_errors=True)
