"""Private MariaDB and Redis servers for the stack tests: their own data directories and ports, so that
stopping them (the outage tests do) harms nothing else on the host."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as sock:  # nothing listening either (e.g. bound to another address)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port(first: int, last: int, taken: set[int] = frozenset()) -> int:
    for port in range(first, last + 1):
        if port not in taken and port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def find(binary: str) -> str:
    found = shutil.which(binary) or next(
        (str(Path(d) / binary) for d in ("/usr/sbin", "/usr/bin") if (Path(d) / binary).exists()), None
    )
    if not found:
        raise RuntimeError(f"{binary} is not installed (scripts/ensure-services.sh installs it)")
    return found


class Server:
    """A child process we can stop and start again on the same port and data."""

    name = "server"

    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen | None = None
        self.log = directory / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(self.port, timeout, self.process)

    def stop(self, timeout: float = 60) -> None:
        """Graceful stop (SIGTERM), KILL if it does not exit in time; waits until the port is closed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        deadline = time.monotonic() + 10
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class MariaDB(Server):
    name = "mariadb"

    def __init__(self, directory: Path, port: int):
        super().__init__(directory, port)
        self.datadir = directory / "data"
        self.user_args = ["--user=root"] if os.geteuid() == 0 else []

    def install(self) -> None:
        subprocess.run(
            [
                find("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",  # root@localhost, no password: real grants
                "--skip-test-db",
                *self.user_args,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def command(self) -> list[str]:
        return [
            find("mariadbd"),
            "--no-defaults",
            *self.user_args,
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.directory / 'mysqld.sock'}",
            f"--pid-file={self.directory / 'mysqld.pid'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]

    def root_url(self, database: str = "") -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}?charset=utf8mb4"


class Redis(Server):
    name = "redis"

    def command(self) -> list[str]:
        return [
            find("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]


@contextlib.contextmanager
def running(server: Server):
    server.start()
    try:
        yield server
    finally:
        server.stop()
