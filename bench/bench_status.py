"""Benchmark: a public status page of 50 sites through nginx, against GET /healthz in the same run.

    .venv/bin/python bench/bench_status.py [--sites 50] [--duration 10] [--connections 32] [--workers 2]
                                           [--rounds 2] [--mysql mysql+pymysql://root@127.0.0.1:3306]

Creates the database `cloudeye_bench_status` (dropped first and at the end; nothing else is touched),
migrates it, loads --sites sites with 90 days of daily rollups and a few incidents each, and publishes
one status page of all of them through the API. Then serves the real app (`cloudeye:app`, gunicorn with
api/gunicorn.conf.py, gevent) behind the real nginx configuration (nginx/render.sh) on loopback ports, and
loads with wrk, in interleaved rounds:
  baseline   GET /healthz                                  nginx + gunicorn + Flask, no database
  html       GET /status/bench                             the page (Jinja, 50 sites x 90 daily bars)
  html-gzip  the same with Accept-Encoding: gzip               as browsers ask for it (nginx compresses)
  json       GET /api/cloudeye/v1/public/status/bench      its JSON twin
  badge      GET /badge/bench/<id>.svg                     one site's uptime badge
Printed: requests/s, p50/p99, errors, and each endpoint's best requests/s as a ratio to the baseline's.
The page is cached for 30 s (services/status_pages.py): under load a hit reads Redis, never the database.
Needs wrk (scripts/ensure-bench-tools.sh) and nginx; Redis database 12 (--redis) is flushed.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import requests
import sqlalchemy as sa
from bench_drivers import nginx_binary, stop, wait_ready, wrk

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "cloudeye_bench_status"
ADMIN = ("bench-admin", "a bench passphrase 1")
SLUG = "bench"


def load(engine, sites: int) -> None:
    """Sites (paused: nothing probes them), 90 daily rollups each, three incidents each."""
    now = datetime.now(UTC).replace(tzinfo=None)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with engine.begin() as connection:
        owner = connection.scalar(sa.text("SELECT id FROM users WHERE username = :u"), {"u": ADMIN[0]})
        connection.execute(
            sa.text(
                "INSERT INTO sites (owner_id, name, url, check_interval_s, timeout_s, accepted_status,"
                " keyword_absent, max_retries, tamper_enabled, tamper_threshold, tamper_ignore, forbidden_keywords,"
                " paused, state, consecutive_failures, created_at, updated_at) VALUES (:owner, :name, :url, 60, 10,"
                " '200-399', 0, 0, 0, 0.05, '[]', '[]', 1, :state, 0, :now, :now)"
            ),
            [
                {
                    "owner": owner,
                    "name": f"Service {index:02d}",
                    "url": f"https://service{index}.internal.example/",
                    "state": "down" if index % 17 == 0 else "up",
                    "now": now,
                }
                for index in range(1, sites + 1)
            ],
        )
        ids = connection.scalars(sa.text("SELECT id FROM sites ORDER BY id")).all()
        connection.execute(
            sa.text(
                "INSERT INTO usability_rollups (site_id, period, bucket_start, checks_total, checks_up,"
                " latency_sum_ms, latency_count, latency_max_ms) VALUES (:site, 'day', :day, 1440, :up,"
                " :up * 120.0, :up, 480.0)"
            ),
            [
                {"site": site, "day": today - timedelta(days=day), "up": 1440 - (site * day) % 40}
                for site in ids
                for day in range(90)
            ],
        )
        connection.execute(
            sa.text(
                "INSERT INTO incidents (site_id, started_at, ended_at, cause) VALUES (:site, :start, :end, :cause)"
            ),
            [
                {
                    "site": site,
                    "start": now - timedelta(days=7 * n + site % 7, hours=2),
                    "end": now - timedelta(days=7 * n + site % 7, hours=1),
                    "cause": "timeout: no answer in 10 s",
                }
                for site in ids
                for n in range(3)
            ],
        )
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint and round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gevent workers")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best run counts")
    parser.add_argument(
        "--mysql", default=os.environ.get("BENCH_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--api-port", type=int, default=19410)
    parser.add_argument("--port", type=int, default=19411, help="nginx")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: scripts/ensure-bench-tools.sh installs it")

    server = sa.create_engine(args.mysql + "/?charset=utf8mb4")
    with server.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{DB_NAME}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    database_url = f"{args.mysql}/{DB_NAME}?charset=utf8mb4"
    redis.Redis.from_url(args.redis).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="cloudeye-bench-status-"))
    workdir.chmod(0o755)  # nginx's workers (www-data when run as root) write temp files here
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "NGINX_", "CLOUDEYE_", "DB_"))
    }
    env.update(
        CLOUDEYE_ENV="development",  # production refuses the passwordless root of a bench box
        SECRET_KEY="bench-status-secret-key-0123456789",
        CLOUDEYE_ADMIN_USERNAME=ADMIN[0],
        CLOUDEYE_ADMIN_PASSWORD=ADMIN[1],
        DATABASE_URL=database_url,
        REDIS_URL=args.redis,
        DATA_DIR=str(workdir / "data"),
        LOG_DIR=str(workdir / "log"),
        LOG_LEVEL="warning",
        FLASK_APP="cloudeye.py",
        GUNICORN_BIND=f"127.0.0.1:{args.api_port}",
        GUNICORN_WORKERS=str(args.workers),
        GUNICORN_ACCESSLOG="/dev/null",
        GUNICORN_MAX_REQUESTS="0",
    )
    processes: list[subprocess.Popen] = []
    runs: dict[str, list[dict]] = {}
    load_before = os.getloadavg()
    try:
        setup = subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "setup"], cwd=ROOT, env=env, capture_output=True
        )
        if setup.returncode != 0:
            sys.exit(f"flask setup failed:\n{setup.stderr.decode(errors='replace')[-2000:]}")
        engine = sa.create_engine(database_url)
        ids = load(engine, args.sites)
        engine.dispose()

        log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115 - lives as long as the process
        processes.append(
            subprocess.Popen(
                [str(ROOT / ".venv/bin/gunicorn"), "-c", "api/gunicorn.conf.py", "cloudeye:app"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
        wait_ready(f"http://127.0.0.1:{args.api_port}/healthz", process=processes[0])
        nginx_dir = workdir / "nginx"
        render_env = {
            "PATH": os.environ["PATH"] + ":/usr/sbin",
            "NGINX_OUT_DIR": str(nginx_dir),
            "NGINX_LISTEN": f"127.0.0.1:{args.port}",
            "NGINX_UPSTREAM": f"127.0.0.1:{args.api_port}",
            "NGINX_PID": str(nginx_dir / "nginx.pid"),
            "NGINX_TEMP_DIR": str(nginx_dir / "tmp"),
            "NGINX_ACCESS_LOGS": "/dev/null",
            "NGINX_ERROR_LOGS": str(workdir / "nginx-error.log"),
        }
        if os.geteuid() == 0:
            render_env["NGINX_USER"] = "www-data"
        subprocess.run(["sh", str(ROOT / "nginx/render.sh")], env=render_env, check=True, capture_output=True)
        processes.append(
            subprocess.Popen(
                [
                    nginx_binary(),
                    "-p",
                    str(nginx_dir),
                    "-c",
                    str(nginx_dir / "nginx.conf"),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
        url = f"http://127.0.0.1:{args.port}"
        wait_ready(f"{url}/healthz", process=processes[1])

        api = f"{url}/api/cloudeye/v1"
        token = requests.post(
            f"{api}/users/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
        ).json()["token"]
        published = requests.post(
            f"{api}/status-pages",
            json={"slug": SLUG, "title": "Bench status", "site_ids": ids},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        published.raise_for_status()
        endpoints = (
            ("baseline", "/healthz"),
            ("html", f"/status/{SLUG}"),
            ("html-gzip", f"/status/{SLUG}"),
            ("json", f"/api/cloudeye/v1/public/status/{SLUG}"),
            ("badge", f"/badge/{SLUG}/{ids[0]}.svg"),
        )
        page = requests.get(url + endpoints[1][1], timeout=10)
        assert page.status_code == 200 and page.text.count('class="public-site"') == args.sites, (
            page.status_code
        )
        assert "internal.example" not in page.text
        gzipped = requests.get(
            url + endpoints[1][1], headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10
        )
        assert gzipped.headers.get("Content-Encoding") == "gzip"
        print(
            f"status page: {len(page.content):,} bytes of HTML ({len(gzipped.raw.read()):,} gzipped by nginx),"
            f" {args.sites} sites x 90 days"
        )
        wrk(url + endpoints[1][1], 2, args.connections, {})  # warm-up
        for round_number in range(1, args.rounds + 1):
            for name, path in endpoints:
                headers = {"Accept-Encoding": "gzip"} if name.endswith("-gzip") else {}
                result = wrk(url + path, args.duration, args.connections, headers)
                runs.setdefault(name, []).append(result)
                print(
                    f"  round {round_number}  {name:<9} {result['rps']:>9.1f} req/s  p50 {result['p50']:>7.1f} ms"
                    f"  p99 {result['p99']:>7.1f} ms  errors {result['errors']}",
                    flush=True,
                )
    finally:
        for process in reversed(processes):
            stop(process)
        with server.begin() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{DB_NAME}`"))
        server.dispose()
        shutil.rmtree(workdir, ignore_errors=True)

    best = {name: max(results, key=lambda r: r["rps"]) for name, results in runs.items()}
    baseline = best["baseline"]["rps"]
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; {args.workers} gevent workers, "
        f"wrk {args.connections} connections x {args.duration} s, best of {args.rounds} rounds"
    )
    print(f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'/ healthz':>10}")
    for name, result in best.items():
        print(
            f"{name:<10} {result['rps']:>9.1f} {result['p50']:>8.1f} {result['p99']:>8.1f} {result['errors']:>7}"
            f" {result['rps'] / baseline:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
