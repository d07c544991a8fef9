"""Benchmark: gunicorn worker class and MySQL driver, through nginx, in one run.

    .venv/bin/python bench/bench_drivers.py [--duration 10] [--connections 64] [--workers 2] [--threads 16]
                                            [--rounds 2] [--mysql mysql+pymysql://root@127.0.0.1:3306]

Compared, each behind the same nginx configuration (nginx/render.sh) and the same gunicorn settings
(api/gunicorn.conf.py) except the two knobs under test:
  gevent + PyMySQL        the default (pure-Python driver, made cooperative by gevent's monkey-patching)
  gevent + mysqlclient    the C driver under gevent: its calls block the worker's event loop
  gthread + mysqlclient   the C driver with OS threads (--threads per worker)
Endpoints, loaded by wrk with --connections keepalive connections for --duration seconds each:
  baseline   GET /healthz                    no database: the cost of nginx + gunicorn + Flask
  db         GET /api/cloudeye/v1/sites      token lookup + a page of sites (CPU-bound, short queries)
  db-wait    GET /bench/db-sleep             one query that waits 50 ms on the server (latency-bound)
             (a bench-only route, bench/drivers_wsgi.py)
Printed: requests/s, p50/p99 latency, CPU time of the gunicorn workers per request and errors per run;
then, from the best of --rounds interleaved rounds, the ratios: each config against gevent + PyMySQL, and
each endpoint against the same config's baseline. CPU per request is the figure least moved by other
load on the machine; throughput and latency are only comparable within one run.

Needs wrk and mysqlclient: `scripts/ensure-bench-tools.sh` installs both (make bench runs it). Without
--mysql the benchmark starts a private MariaDB (temporary data directory, a port in 13306-13399) and stops
it at the end; with --mysql it creates the database `cloudeye_bench_drivers` there and drops it at the end.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from services.config import API_PREFIX

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "cloudeye_bench_drivers"
ADMIN = ("bench-admin", "a bench passphrase 1")
CONFIGS = (
    ("gevent + PyMySQL", "gevent", "pymysql"),
    ("gevent + mysqlclient", "gevent", "mysqldb"),
    ("gthread + mysqlclient", "gthread", "mysqldb"),
)
ENDPOINTS = (
    ("baseline", "/healthz"),
    ("db", API_PREFIX + "/sites?per_page=20"),
    ("db-wait", "/bench/db-sleep"),
)


def free_port(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


def wait_ready(url: str, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Database:
    def __init__(self, server_url: str):
        self.server = make_url(server_url).set(database="")

    def url(self, driver: str) -> str:
        url = self.server.set(drivername=f"mysql+{driver}", database=DB_NAME, query={"charset": "utf8mb4"})
        return url.render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(self.server.set(drivername="mysql+pymysql"))
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
        engine.dispose()

    def create(self) -> None:
        self.drop()
        self._admin(f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS `{DB_NAME}`")


class Stack:
    """gunicorn (one config) behind nginx, both on loopback ports, with temporary files."""

    def __init__(self, workdir: Path, env: dict, worker_class: str, driver: str, args):
        self.workdir = workdir / f"{worker_class}-{driver}"
        self.workdir.mkdir()
        self.workdir.chmod(0o755)  # nginx's workers (www-data when run as root) write temp files here
        self.api_port = free_port(18150, 18199)
        self.port = free_port(18090, 18099)
        self.env = dict(env)
        self.env.update(
            DATABASE_URL=args.database.url(driver),
            GUNICORN_BIND=f"127.0.0.1:{self.api_port}",
            GUNICORN_WORKERS=str(args.workers),
            GUNICORN_WORKER_CLASS=worker_class,
            GUNICORN_THREADS=str(args.threads if worker_class == "gthread" else 1),
            GUNICORN_ACCESSLOG="/dev/null",
            GUNICORN_PIDFILE=str(self.workdir / "gunicorn.pid"),
            GUNICORN_MAX_REQUESTS="0",  # no recycling mid-run: the CPU accounting follows the same workers
        )
        self.processes: list[subprocess.Popen] = []

    def start(self) -> str:
        gunicorn_log = open(self.workdir / "gunicorn.log", "wb")  # noqa: SIM115 - lives as long as the process
        gunicorn = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", "api/gunicorn.conf.py", "--pythonpath", "bench",
             "drivers_wsgi:app"],
            cwd=ROOT, env=self.env, stdout=gunicorn_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(gunicorn)
        wait_ready(f"http://127.0.0.1:{self.api_port}/healthz", process=gunicorn)

        nginx_dir = self.workdir / "nginx"
        render_env = {
            "PATH": os.environ["PATH"] + ":/usr/sbin",
            "NGINX_OUT_DIR": str(nginx_dir),
            "NGINX_LISTEN": f"127.0.0.1:{self.port}",
            "NGINX_UPSTREAM": f"127.0.0.1:{self.api_port}",
            "NGINX_PID": str(nginx_dir / "nginx.pid"),
            "NGINX_TEMP_DIR": str(nginx_dir / "tmp"),
            "NGINX_ACCESS_LOGS": str(self.workdir / "nginx-access.log"),
            "NGINX_ERROR_LOGS": str(self.workdir / "nginx-error.log"),
        }
        if os.geteuid() == 0:
            render_env["NGINX_USER"] = "www-data"
        subprocess.run(["sh", str(ROOT / "nginx/render.sh")], env=render_env, check=True, capture_output=True)
        nginx = subprocess.Popen(
            [nginx_binary(), "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-e",
             str(self.workdir / "nginx-error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(nginx)
        url = f"http://127.0.0.1:{self.port}"
        wait_ready(f"{url}/healthz", process=nginx)
        return url

    def worker_cpu_seconds(self) -> float:
        """User + system CPU time of the gunicorn workers so far (robust to other load on the machine)."""
        master = self.processes[0].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        ticks = 0
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process, signal.SIGQUIT if "nginx" in str(process.args[0]) else signal.SIGTERM)


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        sys.exit("nginx is missing: scripts/ensure-services.sh installs it")
    return found


def wrk(url: str, duration: int, connections: int, headers: dict) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": rps,
        "requests": total,
        "p50": latency_ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": latency_ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def latency_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def prepare(url: str) -> str:
    """Admin (from migrate's bootstrap), a token, and a page of sites to list."""
    token = requests.post(
        f"{url}{API_PREFIX}/users/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for index in range(20):
        response = requests.post(
            f"{url}{API_PREFIX}/sites",
            json={"name": f"bench site {index}", "url": f"http://127.0.0.1:9/{index}", "paused": True},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()
    return token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint and config")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="threads per gthread worker")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best run counts")
    parser.add_argument(
        "--pool-size",
        type=int,
        default=None,
        help="DB_POOL_SIZE for every config (default: api/gunicorn.conf.py's, 32 for gevent, --threads for "
        "gthread; the application's own default is 10 + DB_MAX_OVERFLOW 20)",
    )
    parser.add_argument(
        "--mysql",
        default=os.environ.get("BENCH_MYSQL"),
        help="an existing server's URL (default: a private MariaDB started for the run, so that nothing else "
        "on the host shares its connections or buffer pool)",
    )
    args = parser.parse_args()
    for tool in ("wrk",):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: scripts/ensure-bench-tools.sh installs it")
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        sys.exit("mysqlclient is missing: scripts/ensure-bench-tools.sh installs it")

    workdir = Path(tempfile.mkdtemp(prefix="cloudeye-bench-drivers-"))
    workdir.chmod(0o755)
    private = None
    if args.mysql is None:
        sys.path.insert(0, str(ROOT))
        from tests.stack.servers import MariaDB
        from tests.stack.servers import free_port as free_server_port

        (workdir / "mariadb").mkdir()
        private = MariaDB(workdir / "mariadb", free_server_port(13306, 13399))
        private.install()
        private.start()
        args.mysql = private.root_url()
    args.database = Database(args.mysql)
    args.database.create()
    for round_number in range(1, args.rounds + 1):
        (workdir / f"round{round_number}").mkdir(mode=0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GUNICORN_", "NGINX_", "CLOUDEYE_", "DB_", "LOGIN_"))
    }
    env.update(
        # Production's checks refuse the passwordless root of a development server; nothing else differs.
        CLOUDEYE_ENV="development",
        SECRET_KEY="bench-drivers-secret-key-0123456789",
        CLOUDEYE_ADMIN_USERNAME=ADMIN[0],
        CLOUDEYE_ADMIN_PASSWORD=ADMIN[1],
        DATABASE_URL=args.database.url("pymysql"),
        REDIS_URL=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13"),
        DATA_DIR=str(workdir / "data"),
        LOG_DIR=str(workdir / "log"),
        LOG_LEVEL="warning",  # the same for every config; request lines would only add I/O
        FLASK_APP="cloudeye.py",
    )
    if args.pool_size is not None:
        env["DB_POOL_SIZE"] = str(args.pool_size)
    runs: dict[tuple[str, str], list[dict]] = {}
    load_before = os.getloadavg()
    try:
        setup = subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "setup"], cwd=ROOT, env=env, capture_output=True
        )
        if setup.returncode != 0:
            sys.exit(f"flask setup failed:\n{setup.stderr.decode(errors='replace')[-2000:]}")
        token = None
        # Rounds interleave the configs, so a burst of load from elsewhere on the machine hits them alike.
        for round_number in range(1, args.rounds + 1):
            for label, worker_class, driver in CONFIGS:
                stack = Stack(workdir / f"round{round_number}", env, worker_class, driver, args)
                try:
                    url = stack.start()
                    token = token or prepare(url)
                    headers = {"Authorization": f"Bearer {token}"}
                    for _, path in ENDPOINTS:
                        check = requests.get(url + path, headers=headers, timeout=10)
                        assert check.status_code == 200, (label, path, check.status_code, check.text[:200])
                    wrk(url + ENDPOINTS[1][1], 2, args.connections, headers)  # warm-up: pools, caches
                    for name, path in ENDPOINTS:
                        cpu_before = stack.worker_cpu_seconds()
                        result = wrk(url + path, args.duration, args.connections, headers)
                        result["cpu_ms"] = (
                            (stack.worker_cpu_seconds() - cpu_before) * 1000 / max(1, result["requests"])
                        )
                        runs.setdefault((label, name), []).append(result)
                        print(
                            f"  round {round_number}  {label:<22} {name:<9} {result['rps']:>9.1f} req/s"
                            f"  p50 {result['p50']:>7.1f} ms  p99 {result['p99']:>7.1f} ms"
                            f"  cpu {result['cpu_ms']:>5.2f} ms/req  errors {result['errors']}",
                            flush=True,
                        )
                finally:
                    stack.stop()
    finally:
        args.database.drop()
        if private is not None:
            private.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    # Best of the rounds: other load on the machine only ever slows a run down.
    results = {key: max(values, key=lambda run: run["rps"]) for key, values in runs.items()}

    reference = CONFIGS[0][0]
    print()
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.workers} workers (gthread: {args.threads} threads each), "
        f"DB pool {args.pool_size or 'default'} per worker, wrk {args.connections} connections, "
        f"{args.duration} s per run, best of {args.rounds} rounds, through nginx; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(f"{'config':<22} " + " ".join(f"{name + ' req/s':>16}" for name, _ in ENDPOINTS))
    for label, _, _ in CONFIGS:
        print(f"{label:<22} " + " ".join(f"{results[(label, name)]['rps']:>16.1f}" for name, _ in ENDPOINTS))
    print(f"\n{'p50 / p99 ms':<22} " + " ".join(f"{name:>16}" for name, _ in ENDPOINTS))
    for label, _, _ in CONFIGS:
        cells = [
            f"{results[(label, name)]['p50']:.0f} / {results[(label, name)]['p99']:.0f}"
            for name, _ in ENDPOINTS
        ]
        print(f"{label:<22} " + " ".join(f"{cell:>16}" for cell in cells))
    print(f"\n{'worker CPU ms/request':<22} " + " ".join(f"{name:>16}" for name, _ in ENDPOINTS))
    for label, _, _ in CONFIGS:
        # The least disturbed run: contention inflates CPU time too (caches, frequency), never deflates it.
        cells = [min(run["cpu_ms"] for run in runs[(label, name)]) for name, _ in ENDPOINTS]
        print(f"{label:<22} " + " ".join(f"{cell:>16.2f}" for cell in cells))
    print(f"\nratio to {reference} (same endpoint; > 1 is faster)")
    for label, _, _ in CONFIGS:
        ratios = [results[(label, name)]["rps"] / results[(reference, name)]["rps"] for name, _ in ENDPOINTS]
        print(f"{label:<22} " + " ".join(f"{ratio:>16.2f}" for ratio in ratios))
    print("\nratio to the same config's baseline (/healthz)")
    for label, _, _ in CONFIGS:
        base = results[(label, "baseline")]["rps"]
        print(
            f"{label:<22} "
            + " ".join(f"{results[(label, name)]['rps'] / base:>16.2f}" for name, _ in ENDPOINTS)
        )
    errors = sum(result["errors"] for result in results.values())
    if errors:
        print(f"\nWARNING: {errors} failed requests in total (see the errors column)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
