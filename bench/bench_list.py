"""Benchmark of list requests, search and summaries on a big dataset (by hand, not in CI).

1. creates its own database `cloudeye_bench_list` (dropped first; nothing else is touched), migrates it with
   `flask db upgrade`, and bulk-loads, server-side from MariaDB's sequence tables (INSERT ... SELECT):
   an admin and one operator per 50 sites, 10,000 sites, 1,000,000 findings (100,000 of them in site 1),
   10,000,000 usability checks spread over the 90-day retention with their hourly and daily rollups,
   100,000 tamper events, 300,000 notifications (one channel per operator), and two more sites checked
   every 10 s, one for a day and one for a year (raw checks and rollups), for the summary;
2. builds the search index of the findings with `flask search-index` (what the sync worker does);
3. starts the real stack: gunicorn (gevent workers, `api/gunicorn.conf.py`, `cloudeye:app`) and, when
   /usr/sbin/nginx exists, nginx in front of it with a minimal temporary config on a loopback port;
4. runs EXPLAIN on the queries behind the lists (built by the services exactly as the views build them);
5. measures every list with every filter and sort the API offers, as admin and as an operator who sees 55
   sites (owns 50, reads 5), with wrk (or a Python client when wrk is missing), against `GET /health` (the
   health endpoint that touches the database) through the same stack in the same run, measured before and
   after the lists (the higher of the two is the baseline); then the latency of `q=` searches one at a
   time (p50/p95), and cold summaries of the day-old and the year-old site, alternating.

    .venv/bin/python bench/bench_list.py                      # the full dataset, 20-40 minutes to load and index
    .venv/bin/python bench/bench_list.py --sites 1000 --findings 100000 --big-site 10000 \
        --checks 1000000 --tamper 10000 --notifications 30000 --summary-days 30   # a quick one
    .venv/bin/python bench/bench_list.py --reuse              # skip the load, measure the loaded database

Ports: gunicorn and nginx listen on 127.0.0.1 (19400 and 19401 unless --port says otherwise).
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from services.config import API_PREFIX  # noqa: E402

NGINX = "/usr/sbin/nginx"
SEVERITIES = ("critical", "high", "medium", "low", "info")  # rank 4..0
RETENTION_DAYS = 90


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mysql", default=os.environ.get("BENCH_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
    )
    parser.add_argument("--db", default="cloudeye_bench_list")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--per-operator", type=int, default=50, help="sites each operator owns")
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--big-site", type=int, default=100_000, help="findings in site 1 (the operator's)")
    parser.add_argument("--checks", type=int, default=10_000_000)
    parser.add_argument("--rollup-days", type=int, default=90, help="hourly rollups kept per site")
    parser.add_argument("--tamper", type=int, default=100_000, help="tamper events")
    parser.add_argument("--notifications", type=int, default=300_000)
    parser.add_argument("--summary-days", type=int, default=365, help="history of the long summary site")
    parser.add_argument("--reuse", action="store_true", help="measure the database already loaded")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gevent workers")
    parser.add_argument("--port", type=int, default=19400, help="gunicorn; nginx listens on port+1")
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per request")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cold", type=int, default=100, help="cold summaries of each of the two sites")
    parser.add_argument(
        "--searches", type=int, default=20, help="sequential requests per search query (0: none)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="measure only requests whose label contains this (or one of these, comma-separated)",
    )
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--no-index", action="store_true", help="with --reuse: do not build the search index")
    args = parser.parse_args()
    args.users = 1 + -(-args.sites // args.per_operator)
    return args


# --- database ----------------------------------------------------------------------------------------


def connect(args, database=None):
    url = make_url(args.mysql)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def database_url(args) -> str:
    return f"{args.mysql}/{args.db}?charset=utf8mb4"


def app_env(args) -> dict:
    work = Path(tempfile.gettempdir()) / "cloudeye-bench-list"
    return {
        **os.environ,
        "CLOUDEYE_ENV": "development",  # production refuses the password-less root of a bench box
        "DATABASE_URL": database_url(args),
        "REDIS_URL": args.redis,
        "SECRET_KEY": "bench-list-secret-key-0123456789",
        "DATA_DIR": str(work / "data"),
        "LOG_DIR": str(work / "log"),
        "LOG_LEVEL": "info",
        "FLASK_APP": "cloudeye.py",
    }


@contextmanager
def timed(label: str):
    started = time.perf_counter()
    yield
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)


def create_and_migrate(args) -> None:
    with connect(args) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{args.db}`")
        cur.execute(f"CREATE DATABASE `{args.db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=ROOT,
        env=app_env(args),
        check=True,
        capture_output=True,
    )


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(size, total - start)


def load(args) -> None:
    from services.security import hash_password

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    password = hash_password("bench-password")
    with connect(args, args.db) as conn, conn.cursor() as cur:
        # A bulk load: constraints are known to hold, and checking them row by row is most of the cost.
        cur.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
        with timed(f"{args.users} users, {args.sites} sites"):
            cur.execute(
                "INSERT INTO users (id, username, email, password_hash, role, is_active, created_at, updated_at)"
                " SELECT seq, IF(seq = 1, 'admin', CONCAT('operator', seq)), NULL, %s,"
                f" IF(seq = 1, 'admin', 'operator'), 1, %s, %s FROM seq_1_to_{args.users}",
                (password, now, now),
            )
            owners = args.users - 1
            # The sites, then the two summary sites (10 s checks for a day and for a year), the admin's.
            cur.execute(
                "INSERT INTO sites (id, owner_id, name, url, check_interval_s, timeout_s, accepted_status,"
                " keyword_absent, max_retries, tamper_enabled, tamper_threshold, tamper_ignore,"
                " forbidden_keywords, locations, paused, state, consecutive_failures, last_checked_at,"
                " next_check_at, created_at, updated_at)"
                f" SELECT seq, IF(seq > {args.sites}, 1, 2 + (seq - 1) %% {owners}), CONCAT('site ', seq),"
                " CONCAT('https://site', seq, '.example.test/'), IF(seq > %s, 10, 60), 10, '200-399', 0, 0,"
                " 0, 0.05, '[]', '[]', '[]',"
                " 0, ELT(1 + seq %% 20, 'down', 'up', 'up', 'up', 'up', 'up', 'up', 'up', 'up', 'up',"
                " 'up', 'up', 'up', 'up', 'up', 'up', 'up', 'up', 'pending', 'up'), 0, %s, %s, %s, %s"
                f" FROM seq_1_to_{args.sites + 2}",
                (args.sites, now, now, now, now),
            )
            # Operator 2 also reads 5 sites of operator 3: the visibility subquery has work to do.
            cur.execute(
                "INSERT INTO site_members (site_id, user_id, permission, created_at)"
                " SELECT id, 2, 'read', %s FROM sites WHERE owner_id = 3 ORDER BY id LIMIT 5",
                (now,),
            )
        with secondary_indexes_deferred(
            cur, ("findings", "usability_checks", "tamper_events", "notifications")
        ):
            load_findings(cur, args, now)
            load_checks(cur, args, now)
            load_summary_sites(cur, args, now)
            load_tamper(cur, args, now)
            load_notifications(cur, args, now)
        load_rollups(cur, args, now)
        with timed("ANALYZE TABLE"):
            cur.execute(
                "ANALYZE TABLE users, sites, site_members, findings, usability_checks, usability_rollups,"
                " tamper_events, channels, notifications"
            )
            cur.fetchall()


def build_search_index(args) -> float:
    """The findings' search index, built by the code the sync worker runs (`flask search-index`)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "flask", "search-index"],
        cwd=ROOT,
        env=app_env(args),
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    print(f"  search index: {out.stdout.strip()} ({elapsed:.0f} s with the process start)", flush=True)
    return elapsed


@contextmanager
def secondary_indexes_deferred(cur, tables):
    """Drop the secondary indexes of `tables` for the load and build each again afterwards, exactly as
    the migrations defined it (names, columns, order, uniqueness): one sorted build per index is many
    times faster than maintaining eight B-trees row by row. Indexes a foreign key needs stay."""

    def index_lines(table):
        cur.execute(f"SHOW CREATE TABLE `{table}`")
        return {line.strip().rstrip(",") for line in cur.fetchone()[1].splitlines() if "KEY " in line}

    before = {table: index_lines(table) for table in tables}
    definitions = {}
    for table in tables:
        cur.execute(
            "SELECT index_name, non_unique, GROUP_CONCAT(CONCAT('`', column_name, '`') ORDER BY seq_in_index)"
            " FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = %s"
            " AND index_name <> 'PRIMARY' GROUP BY index_name, non_unique",
            (table,),
        )
        for name, non_unique, columns in cur.fetchall():
            try:
                cur.execute(f"ALTER TABLE `{table}` DROP INDEX `{name}`")
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != 1553:  # needed in a foreign key constraint: keep it
                    raise
                continue
            definitions.setdefault(table, []).append(
                f"ADD {'' if non_unique else 'UNIQUE '}INDEX `{name}` ({columns})"
            )
    yield
    for table, adds in definitions.items():
        with timed(f"{len(adds)} secondary indexes of {table}"):
            cur.execute(f"ALTER TABLE `{table}` {', '.join(adds)}")
    for table in tables:
        assert index_lines(table) == before[table], (
            f"{table}: indexes differ from the migrations' after the load"
        )


def load_findings(cur, args, now) -> None:
    """Findings spread over the sites; severities, statuses and scanners in realistic proportions;
    titles and locations varied enough that `q` has something to search."""
    ts = now.strftime("%Y-%m-%d %H:%M:%S")  # literal values: no parameters, so `%` is SQL's modulo
    with timed(f"{args.findings:,} findings"):
        cur.execute(
            "INSERT INTO bug_imports (id, site_id, user_id, source, format, scanner, filename, close_missing,"
            " findings_in_report, created, reopened, unchanged, closed, duration_ms, created_at)"
            f" SELECT seq, seq, 1, 'api', 'nuclei', 'nuclei', 'report.jsonl', 0, 0, 0, 0, 0, 0, 0, %s"
            f" FROM seq_1_to_{args.sites}",
            (now,),
        )
        for start, size in _chunks(args.findings, 200_000):
            cur.execute(
                "INSERT INTO findings (id, site_id, scanner, dedup_key, rule_id, title, severity, severity_rank,"
                " status, host, path, param, location, description, cwe, `references`, evidence, note,"
                " first_seen_at, last_seen_at, fixed_at, last_import_id, created_at, updated_at)"
                " SELECT n, site, ELT(1 + n % 3, 'nuclei', 'zap', 'sarif'), SHA2(n, 256),"
                " CONCAT('rule-', n % 400),"
                " CONCAT(ELT(1 + n % 8, 'Reflected XSS', 'SQL injection', 'Missing CSP header',"
                "   'Outdated jQuery', 'Open redirect', 'Directory listing', 'TLS 1.0 enabled', 'Cookie without"
                "   Secure flag'), ' in ', ELT(1 + n % 5, 'search', 'login', 'cart', 'admin', 'api'), ' #', n % 97),"
                " ELT(1 + sev, 'info', 'low', 'medium', 'high', 'critical'), sev,"
                " ELT(1 + n % 20, 'open', 'open', 'open', 'open', 'open', 'open', 'open', 'open', 'open', 'open',"
                "   'fixed', 'fixed', 'fixed', 'fixed', 'fixed', 'fixed', 'confirmed', 'confirmed',"
                "   'false_positive', 'accepted_risk'),"
                " CONCAT('site', site, '.example.test'), CONCAT('/', ELT(1 + n % 5, 'search', 'login', 'cart',"
                "   'admin', 'api'), '/', n % 1000), ELT(1 + n % 4, 'q', 'id', '', 'next'),"
                " CONCAT('https://site', site, '.example.test/', ELT(1 + n % 5, 'search', 'login', 'cart',"
                "   'admin', 'api'), '/', n % 1000), 'A finding of the bench.', 'CWE-79', '[]', NULL, NULL,"
                f" '{ts}' - INTERVAL (n % 365) DAY, '{ts}' - INTERVAL (n % 30) DAY, NULL, site, '{ts}', '{ts}'"
                f" FROM (SELECT seq AS n, IF(seq <= {args.big_site}, 1, 2 + seq % {args.sites - 1}) AS site,"
                "   ELT(1 + seq % 20, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4) AS sev"
                f"   FROM seq_{start + 1}_to_{start + size}) AS g"
            )


def load_checks(cur, args, now) -> None:
    """Each site's checks evenly spaced over the retention window, ending now; 3 % down. The hourly
    rollups of each chunk are aggregated from the same generated rows as it is inserted (a chunk is a
    span of time over every site; an hour cut by two chunks is summed by ON DUPLICATE KEY UPDATE), so the
    rollups match the checks without reading 5M rows back through an index."""
    per_site = max(1, args.checks // args.sites)
    step_s = max(1, RETENTION_DAYS * 86400 // per_site)
    ts = now.strftime("%Y-%m-%d %H:%M:%S")  # literal values: no parameters, so `%` is SQL's modulo
    with timed(
        f"{per_site * args.sites:,} usability checks ({per_site:,} a site, every {step_s} s) + rollups"
    ):
        for start, size in _chunks(per_site * args.sites, 500_000):
            generated = (
                f"(SELECT seq AS n, 1 + (seq - 1) % {args.sites} AS site,"
                f"   '{ts}' - INTERVAL (((seq - 1) DIV {args.sites}) * {step_s}) SECOND AS at,"
                "   (seq * 2654435761) % 100 < 3 AS down"
                f"   FROM seq_{start + 1}_to_{start + size}) AS g"
            )
            cur.execute(
                "INSERT INTO usability_checks (id, site_id, due_at, checked_at, status, http_status,"
                " response_ms, failure_kind, reason)"
                " SELECT n, site, at, at + INTERVAL 1 SECOND, IF(down, 'down', 'up'), IF(down, 503, 200),"
                " IF(down, NULL, 20 + (n * 7919) % 400), IF(down, 'status', NULL),"
                f" IF(down, 'status 503 not accepted', NULL) FROM {generated}"
            )
            cur.execute(
                "INSERT INTO usability_rollups (site_id, period, bucket_start, checks_total, checks_up,"
                " latency_sum_ms, latency_count, latency_max_ms)"
                " SELECT site, 'hour', hour, COUNT(*), SUM(NOT down), COALESCE(SUM(ms), 0), COUNT(ms),"
                " COALESCE(MAX(ms), 0)"
                " FROM (SELECT site, down, DATE_FORMAT(at + INTERVAL 1 SECOND, '%Y-%m-%d %H:00:00') AS hour,"
                f"   IF(down, NULL, 20 + (n * 7919) % 400) AS ms FROM {generated}) AS c"
                " GROUP BY site, hour"
                " ON DUPLICATE KEY UPDATE checks_total = checks_total + VALUES(checks_total),"
                " checks_up = checks_up + VALUES(checks_up),"
                " latency_sum_ms = latency_sum_ms + VALUES(latency_sum_ms),"
                " latency_count = latency_count + VALUES(latency_count),"
                " latency_max_ms = GREATEST(latency_max_ms, VALUES(latency_max_ms))"
            )


def load_summary_sites(cur, args, now) -> None:
    """Two sites checked every 10 s: one for the last day, one for `summary_days` (raw checks kept as if
    USABILITY_RETENTION_DAYS were that long; hourly rollups for the last `rollup_days`, daily for all)."""
    ts = now.strftime("%Y-%m-%d %H:%M:%S")
    first_id = args.checks + 1
    for site, days in ((args.sites + 1, 1), (args.sites + 2, args.summary_days)):
        count = days * 8640
        with timed(f"site {site}: {count:,} checks every 10 s ({days} days) + rollups"):
            for start, size in _chunks(count, 500_000):
                generated = (
                    f"(SELECT seq AS n, '{ts}' - INTERVAL (seq * 10) SECOND AS at,"
                    "   (seq * 2654435761) % 100 < 3 AS down"
                    f"   FROM seq_{start}_to_{start + size - 1}) AS g"
                )
                cur.execute(
                    "INSERT INTO usability_checks (id, site_id, due_at, checked_at, status, http_status,"
                    " response_ms, failure_kind, reason)"
                    f" SELECT {first_id} + n, {site}, at, at + INTERVAL 1 SECOND, IF(down, 'down', 'up'),"
                    " IF(down, 503, 200), IF(down, NULL, 20 + (n * 7919) % 400), IF(down, 'status', NULL),"
                    f" IF(down, 'status 503 not accepted', NULL) FROM {generated}"
                )
                cur.execute(
                    "INSERT INTO usability_rollups (site_id, period, bucket_start, checks_total, checks_up,"
                    " latency_sum_ms, latency_count, latency_max_ms)"
                    f" SELECT {site}, 'hour', hour, COUNT(*), SUM(NOT down), COALESCE(SUM(ms), 0), COUNT(ms),"
                    " COALESCE(MAX(ms), 0)"
                    " FROM (SELECT down, DATE_FORMAT(at + INTERVAL 1 SECOND, '%Y-%m-%d %H:00:00') AS hour,"
                    f"   IF(down, NULL, 20 + (n * 7919) % 400) AS ms FROM {generated}) AS c"
                    f" WHERE hour >= '{ts}' - INTERVAL {args.rollup_days} DAY"
                    " GROUP BY hour"
                    " ON DUPLICATE KEY UPDATE checks_total = checks_total + VALUES(checks_total),"
                    " checks_up = checks_up + VALUES(checks_up),"
                    " latency_sum_ms = latency_sum_ms + VALUES(latency_sum_ms),"
                    " latency_count = latency_count + VALUES(latency_count),"
                    " latency_max_ms = GREATEST(latency_max_ms, VALUES(latency_max_ms))"
                )
                cur.execute(
                    "INSERT INTO usability_rollups (site_id, period, bucket_start, checks_total, checks_up,"
                    " latency_sum_ms, latency_count, latency_max_ms)"
                    f" SELECT {site}, 'day', day, COUNT(*), SUM(NOT down), COALESCE(SUM(ms), 0), COUNT(ms),"
                    " COALESCE(MAX(ms), 0)"
                    " FROM (SELECT down, DATE(at + INTERVAL 1 SECOND) AS day,"
                    f"   IF(down, NULL, 20 + (n * 7919) % 400) AS ms FROM {generated}) AS c"
                    " GROUP BY day"
                    " ON DUPLICATE KEY UPDATE checks_total = checks_total + VALUES(checks_total),"
                    " checks_up = checks_up + VALUES(checks_up),"
                    " latency_sum_ms = latency_sum_ms + VALUES(latency_sum_ms),"
                    " latency_count = latency_count + VALUES(latency_count),"
                    " latency_max_ms = GREATEST(latency_max_ms, VALUES(latency_max_ms))"
                )
        first_id += count


def load_tamper(cur, args, now) -> None:
    """Tamper events spread over the sites and the last year; at most one open per site."""
    ts = now.strftime("%Y-%m-%d %H:%M:%S")
    with timed(f"{args.tamper:,} tamper events"):
        cur.execute(
            "INSERT INTO tamper_events (id, site_id, status, severity, change_ratio, forbidden_found,"
            " new_domains, diff, content, content_sha256, detected_at, last_seen_at, note)"
            f" SELECT seq, 1 + seq % {args.sites},"
            f" IF(seq <= {args.sites} AND seq % 10 = 0, 'open',"
            "    ELT(1 + seq % 3, 'resolved', 'false_positive', 'accepted')),"
            " ELT(1 + seq % 2, 'medium', 'high'), 0.1, '[]', '[]', '--- a\n+++ b\n', NULL, NULL,"
            f" '{ts}' - INTERVAL (seq * 317) % (365 * 86400) SECOND,"
            f" '{ts}' - INTERVAL (seq * 317) % (365 * 86400) SECOND, NULL"
            f" FROM seq_1_to_{args.tamper}"
        )


def load_notifications(cur, args, now) -> None:
    """One webhook channel per operator (every site it sees); notifications of the owners' sites over the
    30-day notification retention: mostly sent, some failed or pending."""
    ts = now.strftime("%Y-%m-%d %H:%M:%S")
    owners = args.users - 1
    with timed(f"{owners} channels, {args.notifications:,} notifications"):
        cur.execute(
            "INSERT INTO channels (id, owner_id, name, url, kind, events, all_sites, min_severity,"
            " remind_every_min, enabled, language, secret, created_at, updated_at)"
            " SELECT seq, seq + 1, 'hook', 'https://hooks.example.test/x', 'webhook',"
            ' \'["site.down", "site.up", "tamper.opened", "findings.new"]\', 1, \'high\', 0, 1, \'en\','
            f" 'secret', '{ts}', '{ts}' FROM seq_1_to_{owners}"
        )
        cur.execute(
            "INSERT INTO notifications (id, channel_id, site_id, event, delivery_id, occurred_at, payload,"
            " status, attempts, next_attempt_at, created_at, sent_at)"
            f" SELECT n, 1 + (site - 1) % {owners}, site,"
            " ELT(1 + n % 4, 'site.down', 'site.up', 'tamper.opened', 'findings.new'), UUID(), at, '{}',"
            " ELT(1 + n % 50, 'pending', 'failed', 'failed', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent',"
            "   'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent',"
            "   'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent',"
            "   'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent',"
            "   'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent'), 1, at, at, at"
            f" FROM (SELECT seq AS n, 1 + (seq * 7) % {args.sites} AS site,"
            f"   '{ts}' - INTERVAL (seq * 8) % (30 * 86400) SECOND AS at FROM seq_1_to_{args.notifications}) AS g"
        )


def load_rollups(cur, args, now) -> None:
    older_hours = max(0, (args.rollup_days - RETENTION_DAYS) * 24)
    if older_hours:
        with timed(f"{older_hours * args.sites:,} older hourly rollups ({args.rollup_days} days in all)"):
            oldest_kept = now - timedelta(days=RETENTION_DAYS, hours=1)
            for start, size in _chunks(args.sites, 100):
                cur.execute(
                    "INSERT INTO usability_rollups (site_id, period, bucket_start, checks_total, checks_up,"
                    " latency_sum_ms, latency_count, latency_max_ms)"
                    " SELECT s.seq, 'hour', %s - INTERVAL h.seq HOUR, 60, 58, 58 * 120.0, 58, 480.0"
                    f" FROM seq_{start + 1}_to_{start + size} s, seq_0_to_{older_hours - 1} h",
                    (oldest_kept,),
                )
    with timed("daily rollups"):
        for start, size in _chunks(args.sites, 50):
            cur.execute(
                "INSERT INTO usability_rollups (site_id, period, bucket_start, checks_total, checks_up,"
                " latency_sum_ms, latency_count, latency_max_ms)"
                " SELECT site_id, 'day', DATE(bucket_start), SUM(checks_total), SUM(checks_up),"
                " SUM(latency_sum_ms), SUM(latency_count), MAX(latency_max_ms) FROM usability_rollups"
                " WHERE period = 'hour' AND site_id BETWEEN %s AND %s GROUP BY site_id, DATE(bucket_start)",
                (start + 1, start + size),
            )


def issue_tokens(args) -> dict[str, str]:
    """API tokens for the admin (user 1) and operator 2 (owns 100 of the 1,000 sites, reads 10 more)."""
    from services.security import hash_token, new_token

    tokens = {}
    with connect(args, args.db) as conn, conn.cursor() as cur:
        for role, user_id in (("admin", 1), ("operator", 2)):
            secret = new_token()
            cur.execute(
                "INSERT INTO api_tokens (user_id, kind, name, token_hash, prefix, created_at)"
                " VALUES (%s, 'api', 'bench', %s, %s, UTC_TIMESTAMP())",
                (user_id, hash_token(secret), secret[:10]),
            )
            tokens[role] = secret
    return tokens


def table_sizes(args) -> list[tuple]:
    with connect(args, args.db) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name, ROUND((data_length + index_length) / 1048576)"
            " FROM information_schema.tables WHERE table_schema = %s ORDER BY 2 DESC",
            (args.db,),
        )
        sizes = cur.fetchall()
        counted = []
        for name, mb in sizes:
            cur.execute(f"SELECT COUNT(*) FROM `{name}`")
            counted.append((name, cur.fetchone()[0], mb))
        return [row for row in counted if row[1]]


# --- the stack ---------------------------------------------------------------------------------------


NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream api {{ server 127.0.0.1:{api_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Request-ID $request_id;
        }}
    }}
}}
"""


def wait_for(url: str, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not answer {url}")


@contextmanager
def stack(args, work: Path):
    processes = []
    env = app_env(args)
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{args.port}",
        GUNICORN_WORKERS=str(args.workers),
        GUNICORN_WORKER_CLASS="gevent",
        GUNICORN_ACCESSLOG=str(work / "gunicorn-access.log"),
        GUNICORN_ERRORLOG=str(work / "gunicorn-error.log"),
        GUNICORN_MAX_REQUESTS="0",  # no recycling in the middle of a measurement
        GUNICORN_PIDFILE="",
    )
    try:
        with open(work / "gunicorn.out", "wb") as out:
            api = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "api/gunicorn.conf.py", "cloudeye:app"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(api)
        api_base = f"http://127.0.0.1:{args.port}"
        wait_for(f"{api_base}/healthz", api, "gunicorn")
        base = api_base
        if not args.no_nginx and Path(NGINX).exists():
            nginx_port = args.port + 1
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
                (work / name).mkdir(exist_ok=True)
            conf = work / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    work=work,
                    port=nginx_port,
                    api_port=args.port,
                    user="user root;" if os.geteuid() == 0 else "",
                )
            )
            nginx = subprocess.Popen(
                [NGINX, "-c", str(conf), "-p", str(work), "-g", "daemon off;"], start_new_session=True
            )
            processes.append(nginx)
            base = f"http://127.0.0.1:{nginx_port}"
            wait_for(f"{base}/healthz", nginx, "nginx")
        yield base
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


# --- EXPLAIN -----------------------------------------------------------------------------------------


def explain_queries(args, sample: dict) -> tuple[list[dict], dict[int, str]]:
    """EXPLAIN the SELECTs the views run (page 1 and the COUNT of paginate), built by the services."""
    os.environ.update({k: v for k, v in app_env(args).items() if k not in ("FLASK_APP",)})
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    from api import create_app
    from services import findings, sites, tamper, usability
    from services.alerts import outbox
    from services.config import Config
    from services.extensions import db
    from services.models import User
    from services.paging import COUNT_EXACT_UP_TO

    app = create_app(Config.from_env(), role="bench")
    rows = []
    with app.app_context():
        admin, operator = db.session.get(User, 1), db.session.get(User, 2)
        site_id = sample["site_id"]
        cases = [
            (
                "bugs site+severity+status",
                admin,
                lambda u: findings.list_findings(
                    u, site_id=site_id, severity=["high"], status=["open"], sort="-severity"
                ),
            ),
            (
                "bugs q (all visible)",
                admin,
                lambda u: findings.list_findings(u, q=sample["q"], sort="-severity"),
            ),
            (
                "bugs q (operator)",
                operator,
                lambda u: findings.list_findings(u, q=sample["q"], sort="-severity"),
            ),
            ("bugs default (admin)", admin, lambda u: findings.list_findings(u, sort="-severity")),
            ("bugs default (operator)", operator, lambda u: findings.list_findings(u, sort="-severity")),
            ("checks site", admin, lambda u: usability.list_checks(u, site_id)),
            ("checks all (operator)", operator, lambda u: usability.list_checks(u)),
            ("sites (admin)", admin, lambda u: sites.list_sites(u)),
            ("sites (operator)", operator, lambda u: sites.list_sites(u)),
            ("tamper (admin)", admin, lambda u: tamper.list_events(u)),
            ("tamper (operator)", operator, lambda u: tamper.list_events(u)),
            ("notifications (admin)", admin, lambda u: outbox.list_notifications(u)),
            ("notifications (operator)", operator, lambda u: outbox.list_notifications(u)),
        ]
        for label, user, build in cases:
            query = build(user)
            for kind, statement in (
                ("page", query.limit(20).offset(0)),
                (
                    "count",
                    sa.select(sa.func.count()).select_from(
                        query.order_by(None)
                        .with_only_columns(sa.literal_column("1"), maintain_column_froms=True)
                        .limit(COUNT_EXACT_UP_TO + 1)
                        .subquery()
                    ),
                ),
            ):
                sql = str(statement.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))
                plan = [dict(r._mapping) for r in db.session.execute(sa.text("EXPLAIN " + sql))]
                started = time.perf_counter()
                try:
                    db.session.execute(statement).all()
                    elapsed_ms = (time.perf_counter() - started) * 1000
                except sa.exc.DBAPIError as exc:  # e.g. an on-disk temporary table that could not be written
                    db.session.rollback()
                    elapsed_ms = float("nan")
                    plan.append({"table": "FAILED", "Extra": str(exc.orig)[:200]})
                rows.append({"query": label, "kind": kind, "ms": elapsed_ms, "plan": plan, "sql": sql})
        summary_keys = {s: app_cache_key(app, s) for s in (args.sites + 1, args.sites + 2)}
    return rows, summary_keys


def app_cache_key(app, site_id: int) -> str:
    from services.cache import cache

    return cache.key("summary", site_id)


def print_explain(rows: list[dict]) -> None:
    print("\nEXPLAIN (first table of each plan: key used, rows examined estimate, extra)")
    print(f"  {'query':32} {'kind':5} {'ms':>8}  plan")
    for row in rows:
        steps = "; ".join(
            f"{p.get('table')}: {p.get('type')} key={p.get('key')} rows={p.get('rows')}"
            + (f" [{p.get('Extra')}]" if p.get("Extra") else "")
            for p in row["plan"]
        )
        print(f"  {row['query']:32} {row['kind']:5} {row['ms']:8.1f}  {steps}")


# --- load generation ---------------------------------------------------------------------------------


WRK_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_PCT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
WRK_TIMEOUTS = re.compile(r"Socket errors:.*timeout (\d+)")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(base: str, path: str, token: str | None, args) -> dict:
    url = base + path
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    check = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(check, timeout=60) as response:
            assert response.status == 200, (path, response.status)
    except OSError as exc:  # HTTPError included: measured anyway, the load counts the errors
        print(f"  ! {path}: {exc}")
    if shutil.which("wrk"):
        common = ["wrk", "-t2", f"-c{args.connections}", "--latency", "--timeout", "30s", *headers, url]
        subprocess.run([*common[:3], "-d2s", *common[3:]], capture_output=True, check=True)  # warm-up
        out = subprocess.run(
            [*common[:3], f"-d{args.duration}s", *common[3:]], capture_output=True, text=True, check=True
        ).stdout
        pct = {int(p): _ms(v, u) for p, v, u in WRK_PCT.findall(out)}
        errors = WRK_NON2XX.search(out)
        timeouts = WRK_TIMEOUTS.search(out)
        if float(WRK_LINE.search(out).group(1)) < 1:
            # Under this concurrency nothing (or next to nothing) completed within the run: say how long
            # one such request takes on its own instead.
            return measure_alone(url, token)
        return {
            "rps": float(WRK_LINE.search(out).group(1)),
            "p50": pct[50],
            "p90": pct[90],
            "p99": pct[99],
            "errors": (int(errors.group(1)) if errors else 0) + (int(timeouts.group(1)) if timeouts else 0),
        }
    return measure_python(url, token, args)


def measure_alone(url: str, token: str | None, count: int = 3) -> dict:
    """Latency of `count` requests sent one after the other (for requests too slow to load)."""
    latencies = []
    errors = 0
    for _ in range(count):
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
        except OSError:
            errors += 1
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    median = statistics.median(latencies)
    return {
        "rps": 1000 / median,
        "p50": median,
        "p90": latencies[-1],
        "p99": latencies[-1],
        "errors": errors,
        "alone": True,
    }


def measure_python(url: str, token: str | None, args) -> dict:
    """Fallback without wrk: N threads each looping over keep-alive connections."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + args.duration

    def client():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            conn.request(
                "GET",
                parts.path + ("?" + parts.query if parts.query else ""),
                headers={"Authorization": f"Bearer {token}"} if token else {},
            )
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "rps": len(latencies) / args.duration,
        "p50": quantile(0.5),
        "p90": quantile(0.9),
        "p99": quantile(0.99),
        "errors": errors[0],
    }


def cold_summaries(base: str, token: str, keys: dict[int, str], args) -> dict[int, dict]:
    """Summaries of the day-old and the year-old site, alternating, one at a time, each with its cache
    entry deleted first: every one computed."""
    import redis

    store = redis.Redis.from_url(args.redis)
    latencies: dict[int, list[float]] = {site_id: [] for site_id in keys}
    for _ in range(args.cold):
        for site_id, key in keys.items():
            store.delete(key)
            request = urllib.request.Request(
                f"{base}{API_PREFIX}/usability/summary?site_id={site_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read())
            latencies[site_id].append((time.perf_counter() - started) * 1000)
            assert body["uptime"]["24h"] is not None
    return {site_id: spread(values) for site_id, values in latencies.items()}


def spread(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p95": values[max(0, int(0.95 * len(values)) - 1)],
        "mean": statistics.fmean(values),
        "max": values[-1],
    }


def search_latencies(base: str, tokens: dict, queries: list[tuple[str, str]], args) -> list[tuple]:
    """`GET /bugs?q=` one request at a time (no other load): p50 and p95 of each query."""
    rows = []
    for role, query in queries if args.searches else ():
        url = f"{base}{API_PREFIX}/bugs?{query}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {tokens[role]}"})
        with urllib.request.urlopen(request, timeout=120) as response:  # warm-up, and the total
            body = json.loads(response.read())
        latencies = []
        for _ in range(args.searches):
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
            latencies.append((time.perf_counter() - started) * 1000)
        rows.append((role, query, body["total"], body["total_is_estimate"], spread(latencies)))
    return rows


def request_matrix(args, site: int, rare_site: int) -> list[tuple[str, str]]:
    """(label, path and query) of every list with every filter and sort the API offers."""
    from services.findings import SORTS

    day_ago = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bugs = [
        "",
        *[f"sort={sort}" for sort in SORTS if sort != "-severity"],
        "severity=high",
        "severity=critical&severity=high",
        "status=open",
        "status=false_positive",
        "status=open&status=confirmed",
        "scanner=zap",
        "severity=critical&status=accepted_risk&scanner=sarif",
        "severity=info&status=fixed&sort=first_seen_at",
        f"site_id={site}",
        f"site_id={site}&sort=last_seen_at",
        f"site_id={site}&sort=-first_seen_at",
        f"site_id={site}&sort=id",
        f"site_id={site}&severity=high&status=open",
        f"site_id={site}&scanner=zap&status=fixed",
        f"site_id={site}&severity=critical&status=false_positive&sort=-last_seen_at",
        "q=redirect",
        "q=cart/7",
        f"q=site{rare_site}.example",
        "q=no-such-text",
        "q=zq",
        f"site_id={site}&q=redirect",
        f"site_id={site}&q=login/42",
        "q=redirect&severity=high&sort=last_seen_at",
    ]
    checks = [
        "",
        "status=down",
        "location=default",
        f"since={day_ago}",
        f"until={week_ago}",
        f"site_id={site}",
        f"site_id={site}&status=down",
        f"site_id={site}&since={week_ago}&until={day_ago}",
    ]
    tamper = ["", "status=open", "status=resolved", f"site_id={site}", f"site_id={site}&status=resolved"]
    sites = ["", "q=site12", "q=no-such-site", "state=down", "state=up&q=example"]
    notifications = ["", "channel_id=1", f"site_id={site}", "status=failed", "event=site.down",
                     "status=pending&event=tamper.opened"]  # fmt: skip
    matrix = []
    for path, queries in (
        ("/bugs", bugs),
        ("/usability/checks", checks),
        ("/tamper/events", tamper),
        ("/sites", sites),
        ("/notifications", notifications),
    ):
        matrix += [
            (f"{path}{'?' + q if q else ''}", f"{API_PREFIX}{path}{'?' + q if q else ''}") for q in queries
        ]
    return matrix


def main():
    args = parse_args()
    print(
        f"cloudeye list bench: database {args.db}, {args.sites:,} sites, {args.findings:,} findings "
        f"({args.big_site:,} in site 1), {args.checks:,} checks, {args.tamper:,} tamper events, "
        f"{args.notifications:,} notifications; summary sites of 1 and {args.summary_days} days"
    )
    print(f"  started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}", flush=True)
    if not args.reuse:
        with timed("create + flask db upgrade"):
            create_and_migrate(args)
        started = time.perf_counter()
        load(args)
        print(f"  loaded in {time.perf_counter() - started:.0f} s")
        build_search_index(args)
    else:  # the code may have moved on: migrate to head, and index what is not indexed yet
        subprocess.run(
            [sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=app_env(args), check=True
        )
        if not args.no_index:
            build_search_index(args)
    for name, rows, mb in table_sizes(args):
        print(f"  {name:20} {rows:>12,} rows {mb:>7} MB")
    tokens = issue_tokens(args)

    # Operator 2 owns every site whose (id - 1) % (users - 1) == 0; site 1 (the big one) is one of them.
    operator_sites = [i for i in range(1, args.sites + 1) if (i - 1) % (args.users - 1) == 0]
    sample = {"site_id": operator_sites[0], "q": "redirect"}
    explain, summary_keys = explain_queries(args, sample)
    print_explain(explain)

    site = sample["site_id"]
    matrix = [
        (label, path, role)
        for label, path in request_matrix(args, site, operator_sites[-1])
        for role in ("admin", "operator")
        if any(part in label for part in args.only.split(","))
    ]
    work = Path(tempfile.mkdtemp(prefix="cloudeye-bench-list-"))
    results = []
    with stack(args, work) as base:
        print(
            f"\nload: {'wrk' if shutil.which('wrk') else 'python client'}, {args.connections} connections, "
            f"{args.duration} s each, {args.workers} gevent workers, "
            f"{'nginx -> ' if base.endswith(str(args.port + 1)) else ''}gunicorn",
            flush=True,
        )

        def run(label, path, role):
            figures = measure(base, path, tokens.get(role) if role else None, args)
            if figures.get("alone"):
                label += " (alone)"
            results.append((label, role or "-", figures))
            print(
                f"  {label:60} {role or '-':9} {figures['rps']:8.0f} req/s  p50 {figures['p50']:7.1f} ms"
                f"  p99 {figures['p99']:7.1f} ms  errors {figures['errors']}",
                flush=True,
            )
            return figures

        before = run("GET /health (baseline, before)", API_PREFIX + "/health", None)
        healthz = run("GET /healthz (no database)", "/healthz", None)
        # What any authenticated request costs before it lists anything: a list cannot beat it.
        floor = run("GET /users/me (a token and one row: the floor)", API_PREFIX + "/users/me", "admin")
        for label, path, role in matrix:
            run(label, path, role)
        after = run("GET /health (baseline, after)", API_PREFIX + "/health", None)
        searches = search_latencies(
            base,
            tokens,
            [
                (role, q)
                for q in (
                    "q=redirect",
                    "q=cart/7",
                    f"q=site{operator_sites[-1]}.example",
                    "q=login/42",
                    "q=no-such-text",
                    "q=zq",
                    "q=Open%20redirect%20in%20cart",
                    f"site_id={site}&q=login/42",
                )
                for role in ("admin", "operator")
            ],
            args,
        )
        cold = cold_summaries(base, tokens["admin"], summary_keys, args) if args.cold else None
        load_after = os.getloadavg()

    # The higher of the two: a baseline caught in a slow moment (other jobs on the machine) would flatter
    # every ratio.
    baseline_rps = max(before["rps"], after["rps"])
    print(f"\nfinished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load_after}")
    print(
        f"baseline: GET /health {before['rps']:.0f} req/s before, {after['rps']:.0f} after: "
        f"{baseline_rps:.0f} (the higher) is 1.00; /healthz (no database) {healthz['rps']:.0f}"
    )
    print("\n| request | caller | req/s | p50 ms | p99 ms | errors | vs `/health` |")
    print("|---|---|---|---|---|---|---|")
    below = 0
    for label, role, f in results:
        ratio = f["rps"] / baseline_rps
        listed = not label.startswith("GET /")
        below += listed and ratio < 0.5
        print(
            f"| `{label}` | {role} | {f['rps']:.0f} | {f['p50']:.1f} | {f['p99']:.1f} | {f['errors']} | "
            f"{'**' if listed and ratio < 0.5 else ''}{ratio:.2f}{'**' if listed and ratio < 0.5 else ''} |"
        )
    print(f"\nlists under 0.5x /health: {below} of {len(results) - 4}")
    print(f"the floor (GET /users/me) is {floor['rps'] / baseline_rps:.2f}x /health")
    print("\n| search (one at a time) | caller | total | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|---|")
    everything = []
    for role, query, total, estimate, f in searches:
        print(
            f"| `{query}` | {role} | {'more than ' if estimate else ''}{total:,} | {f['p50']:.1f} | "
            f"{f['p95']:.1f} | {f['max']:.1f} |"
        )
        everything.append(f["p95"])
    if everything:
        print(f"\nworst search p95: {max(everything):.1f} ms")
    if cold is None:  # --cold 0
        print(f"logs: {work}")
        return
    day, year = cold[args.sites + 1], cold[args.sites + 2]
    print(
        f"\ncold summaries (cache entry deleted before each, alternating, {day['n']} each):\n"
        f"  1 day of 10 s checks:  p50 {day['p50']:.1f} ms, p95 {day['p95']:.1f} ms, mean {day['mean']:.1f} ms\n"
        f"  {args.summary_days} days of 10 s checks: p50 {year['p50']:.1f} ms, p95 {year['p95']:.1f} ms,"
        f" mean {year['mean']:.1f} ms\n"
        f"  year / day: p50 {year['p50'] / day['p50']:.2f}, mean {year['mean'] / day['mean']:.2f}"
    )
    print(f"logs: {work}")


if __name__ == "__main__":
    main()
