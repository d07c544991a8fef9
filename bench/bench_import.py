"""Benchmark: importing a big nuclei report, in-process and through the API, against bare multi-row INSERTs
of the same rows in the same run; and the API's /health and memory during a 200 MB import.

    .venv/bin/python bench/bench_import.py [--count 100000] [--big-mb 200] [--mysql mysql+pymysql://root@127.0.0.1:3306]
    .venv/bin/python bench/bench_import.py --index-costs     # also what each index of `findings` costs an INSERT

The server comes from --mysql, DATABASE_URL (its database name is ignored) or BENCH_MYSQL (default: root on
127.0.0.1:3306). The benchmark creates
its own database `cloudeye_bench_import`, applies the migrations, and drops it at the end (--keep keeps it).

Measured, each on an empty site (and empty baseline tables):
  parse only            reading the report with the nuclei parser, nothing written
  import                services.imports.import_report in this process: parse, dedup, lookups, inserts, commit
  re-import             the same report again into the same site: every finding unchanged
  INSERT same shape     the finished rows (built beforehand, untimed, values already converted) inserted with
                        PyMySQL's executemany (one multi-row INSERT of 1,000 rows a statement) into a table
                        made with CREATE TABLE ... LIKE findings: the same columns and indexes
  INSERT minimal        the same into a table of the same columns with two keys only: the primary key and the
                        unique (site_id, dedup_key) that deduplication needs
  API import            through nginx and gunicorn (gevent workers, the real api/gunicorn.conf.py and
                        nginx/render.sh configuration) and a real sync worker (sync_main.py): from the start of
                        `POST /bugs/imports` (the report is above IMPORT_QUEUE_BYTES: 202) until
                        `GET /bugs/imports/{id}` says done; polled every 0.2 s
  /health during a big import
                        a --big-mb report posted through nginx while a client requests `GET /health` every
                        20 ms; its latencies before (idle) and during the upload and the worker's import, and
                        the RSS of the gunicorn workers and of the sync worker, sampled every 0.1 s
Ports 19500-19510 (--port), Redis db 13 (--redis).
"""

import argparse
import functools
import http.client
import json
import logging
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "cloudeye_bench_import"
TEMPLATES = ("exposed-panel", "git-config", "xss-reflected", "open-redirect", "tech-detect")
SEVERITIES = ("high", "medium", "high", "low", "info")
API_PREFIX = "/api/cloudeye/v1"


def report_line(number: int, host: str = "bench.example.test") -> str:
    kind = number % len(TEMPLATES)
    return (
        json.dumps(
            {
                "template-id": TEMPLATES[kind],
                "template-path": f"http/{TEMPLATES[kind]}.yaml",
                "info": {
                    "name": TEMPLATES[kind].replace("-", " ").title(),
                    "author": ["bench"],
                    "tags": ["bench"],
                    "severity": SEVERITIES[kind],
                    "description": f"{TEMPLATES[kind]} detected by the benchmark generator.",
                    "reference": [f"https://example.org/ref/{TEMPLATES[kind]}"],
                    "classification": {"cve-id": None, "cwe-id": ["cwe-200"], "cvss-score": 5.3},
                },
                "type": "http",
                "host": f"https://{host}",
                "port": "443",
                "scheme": "https",
                "url": f"https://{host}",
                "matched-at": f"https://{host}/app/{number // len(TEMPLATES)}/page",
                "ip": "127.0.0.1",
                "timestamp": "2026-11-20T10:00:00.000000000+00:00",
                "curl-command": f"curl -X GET 'https://{host}/app/{number}'",
                "matcher-status": True,
            }
        )
        + "\n"
    )


def write_report(path: Path, count: int | None = None, size: int | None = None) -> tuple[int, int]:
    """Distinct nuclei results as JSON lines, shaped like real nuclei output: `count` of them, or as many
    as make `size` bytes. Returns (findings, bytes)."""
    written = number = 0
    with path.open("w") as out:
        while count is None or number < count:
            line = report_line(number)
            if size is not None and written + len(line) > size:
                break
            out.write(line)
            written += len(line)
            number += 1
    return number, path.stat().st_size


def server_url(args) -> str:
    raw = (
        args.mysql
        or os.environ.get("DATABASE_URL")
        or os.environ.get("BENCH_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
    )
    url = make_url(raw)
    if not url.drivername.startswith("mysql"):
        sys.exit(f"the benchmark needs MySQL/MariaDB, got {url.drivername}")
    return url.set(drivername="mysql+pymysql", database=None).render_as_string(hide_password=False)


def timed(label: str, results: dict, func):
    started = time.perf_counter()
    value = func()
    results[label] = time.perf_counter() - started
    print(f"  {label:<26} {results[label]:8.2f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="findings in the generated report")
    parser.add_argument(
        "--big-mb", type=int, default=200, help="size of the report of the /health test (0: skip)"
    )
    parser.add_argument("--mysql", help="server URL, e.g. mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--port", type=int, default=19500, help="first of the ports used (gunicorn, nginx)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gevent workers")
    parser.add_argument("--no-api", action="store_true", help="only the in-process part")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="rounds of import / INSERT same shape / INSERT minimal (and API imports), interleaved; the fastest "
        "of each counts (the machine's other load comes and goes)",
    )
    parser.add_argument("--index-costs", action="store_true", help="what each index costs the bare INSERT")
    parser.add_argument(
        "--audit",
        type=int,
        default=0,
        metavar="N",
        help="only the index audit: N findings over 500 sites (one with a tenth), EXPLAIN of every /bugs filter "
        "and sort and of the import's own statements, with each index of `findings` ignored in turn",
    )
    parser.add_argument("--db", default=DB_NAME, help="the benchmark's own database (dropped first)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database and files")
    args = parser.parse_args()

    server = server_url(args)
    admin = sa.create_engine(server + "/?charset=utf8mb4")
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{args.db}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{args.db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    workdir = Path(tempfile.mkdtemp(prefix="cloudeye-bench-import-"))
    workdir.chmod(0o755)  # nginx's workers (www-data when run as root) write temp files here
    env = {
        "CLOUDEYE_ENV": "development",  # production refuses the password-less root of a bench box
        "DATABASE_URL": f"{server}/{args.db}?charset=utf8mb4",
        "DATA_DIR": str(workdir / "data"),
        "LOG_DIR": str(workdir / "log"),
        "LOG_LEVEL": "warning",
        "SECRET_KEY": "bench-import-secret-key-0123456789",
    }
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load average {load()}")
    try:
        if args.audit:
            audit(args)
            return
        results = run_in_process(args, workdir)
        if not args.no_api:
            run_api(args, workdir, env, results)
        print(f"load average at the end {load()}")
    finally:
        if not args.keep:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{args.db}`"))
            shutil.rmtree(workdir, ignore_errors=True)
        admin.dispose()


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


# --- in-process ----------------------------------------------------------------------------------------


def run_in_process(args, workdir: Path) -> dict:
    from flask_migrate import upgrade

    from services.app import create_core_app
    from services.extensions import db
    from services.imports import FindingReconciler, import_report
    from services.models import Finding, Site, User
    from services.parsers.detect import open_report

    count = args.count
    app = create_core_app(role="bench")
    logging.getLogger("services").setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
        owner = User(username="bench", password_hash="x", role="operator")
        db.session.add(owner)
        db.session.flush()
        rounds = max(1, args.repeat)
        sites = [
            Site(owner_id=owner.id, name=f"bench {n}", url=f"https://bench{n}.example.test/", paused=True)
            for n in range(2 + 2 * rounds + 1)
        ]
        db.session.add_all(sites)
        db.session.commit()
        site_ids = [site.id for site in sites]

        report = workdir / "report.jsonl"
        _, size = write_report(report, count=count)
        version = db.session.scalar(sa.text("SELECT VERSION()"))
        print(
            f"{count} nuclei findings, {size / 1e6:.1f} MB; {version}; Python {platform.python_version()}; "
            f"{os.cpu_count()} CPUs"
        )
        results: dict = {"count": count, "report_bytes": size, "api_sites": site_ids[2 + rounds :]}

        def parse_only():
            with report.open("rb") as stream:
                _, findings = open_report(stream)
                return sum(1 for _ in findings)

        timed("parse only", results, parse_only)

        def do_import(site_id, close_missing=False):
            with report.open("rb") as stream:
                return import_report(db.session.get(Site, site_id), stream, close_missing=close_missing)

        record = timed("import", results, lambda: do_import(site_ids[0]))
        assert (record.created, record.findings_in_report) == (count, count), record
        first_import = results["import"]
        record = timed("re-import", results, lambda: do_import(site_ids[0]))
        assert record.unchanged == count and record.created == 0, record
        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # The very rows the import wrote, built with the engine's own row builder, outside the timing,
        # with their values converted as the driver gets them (naive UTC, JSON text).
        reconciler = FindingReconciler(site_ids[1])
        with report.open("rb") as stream:
            _, findings = open_report(stream)
            rows = [reconciler._new_row(finding.dedup_key(), finding) for finding in findings]
        table = Finding.__table__
        columns = [column.name for column in table.columns if column.name != "id"]
        processors = {
            name: table.c[name].type.bind_processor(db.engine.dialect)
            for name in columns
            if table.c[name].type.bind_processor(db.engine.dialect)
        }
        raw_rows = [
            tuple(processors[name](row[name]) if name in processors else row[name] for name in columns)
            for row in rows
        ]
        del rows

        results["baseline"] = (columns, raw_rows)

        def bare_insert(table_name: str):
            return functools.partial(insert_rows, db.engine, table_name, columns, raw_rows)

        def empty_tables() -> list[str]:
            return make_baseline_tables(db.engine)

        indexes = empty_tables()
        print(f"  findings' keys: PRIMARY, {', '.join(indexes)}")
        imports_s, shape_s, minimal_s = [first_import], [], []
        for number in range(rounds):
            if number:
                label = f"import #{number + 1}"
                timed(label, results, functools.partial(do_import, site_ids[1 + number]))
                imports_s.append(results[label])
                empty_tables()
            timed(f"INSERT same shape #{number + 1}", results, bare_insert("bench_shape"))
            shape_s.append(results[f"INSERT same shape #{number + 1}"])
            timed(f"INSERT minimal #{number + 1}", results, bare_insert("bench_minimal"))
            minimal_s.append(results[f"INSERT minimal #{number + 1}"])
        results["import"], results["INSERT same shape"], results["INSERT minimal"] = (
            min(imports_s),
            min(shape_s),
            min(minimal_s),
        )
        print(
            f"  fastest of {rounds}: import {results['import']:.2f} s, INSERT same shape "
            f"{results['INSERT same shape']:.2f} s, INSERT minimal {results['INSERT minimal']:.2f} s"
        )

        if args.index_costs:
            # Server-side copies (INSERT ... SELECT from the same-shape table): what the server spends on each
            # index, without the client's share, which is the same for every table. Fastest of two runs.
            print("  what each secondary index adds to a server-side copy of the rows (INSERT ... SELECT):")
            with db.engine.begin() as connection:
                definitions = index_definitions(connection, "findings")

            def copy_into(table_name: str, extra_index: str | None = None) -> float:
                best = float("inf")
                for _ in range(2):
                    with db.engine.begin() as connection:
                        connection.execute(sa.text(f"DROP TABLE IF EXISTS `{table_name}`"))
                        connection.execute(sa.text(f"CREATE TABLE `{table_name}` LIKE bench_minimal"))
                        if extra_index:
                            connection.execute(
                                sa.text(
                                    f"ALTER TABLE `{table_name}` ADD INDEX `{extra_index}` ({definitions[extra_index]})"
                                )
                            )
                    started = time.perf_counter()
                    with db.engine.begin() as connection:
                        connection.execute(sa.text(f"INSERT INTO `{table_name}` SELECT * FROM bench_shape"))
                    best = min(best, time.perf_counter() - started)
                with db.engine.begin() as connection:
                    connection.execute(sa.text(f"DROP TABLE IF EXISTS `{table_name}`"))
                return best

            base = copy_into("bench_one")
            results["copy minimal"] = base
            print(f"    minimal (PRIMARY, uq_findings_site_dedup) {base:6.2f} s")
            for name in indexes:
                if name == "uq_findings_site_dedup":
                    continue
                spent = copy_into("bench_one", name)
                results[f"copy + {name}"] = spent
                print(
                    f"    + {name:<38} {spent:6.2f} s  (+{spent - base:5.2f} s, {100 * (spent - base) / base:+.0f} %)"
                )
            with db.engine.begin() as connection:
                connection.execute(sa.text("CREATE TABLE bench_all LIKE findings"))
            started = time.perf_counter()
            with db.engine.begin() as connection:
                connection.execute(sa.text("INSERT INTO bench_all SELECT * FROM bench_shape"))
            print(f"    all of findings' indexes                 {time.perf_counter() - started:6.2f} s")
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP TABLE bench_all"))

        print()
        for label, value in (
            ("import / INSERT same shape", results["import"] / results["INSERT same shape"]),
            ("import / INSERT minimal", results["import"] / results["INSERT minimal"]),
            ("INSERT same shape / minimal", results["INSERT same shape"] / results["INSERT minimal"]),
            ("re-import / import", results["re-import"] / results["import"]),
            ("parse only / import", results["parse only"] / results["import"]),
        ):
            print(f"  {label:<30} {value:.2f}")
        print(f"  import rate                    {count / results['import']:,.0f} findings/s")
        print(f"  peak RSS after the imports     {results['peak_rss_mb']:.0f} MB (whole process)")
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE bench_shape"))
            connection.execute(sa.text("DROP TABLE bench_minimal"))
        db.engine.dispose()
    return results


def insert_rows(engine, table_name: str, columns: list[str], raw_rows: list[tuple]) -> None:
    """The bare multi-row INSERT: PyMySQL's executemany of 1,000 rows (one INSERT ... VALUES (...), (...))."""
    statement = (
        f"INSERT INTO `{table_name}` ({', '.join(f'`{name}`' for name in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for start in range(0, len(raw_rows), 1000):
            cursor.executemany(statement, raw_rows[start : start + 1000])
        connection.commit()
    finally:
        connection.close()


def make_baseline_tables(engine) -> list[str]:
    """Empty `bench_shape` (CREATE TABLE ... LIKE findings) and `bench_minimal` (the same with only the
    primary key and the unique dedup key); returns the secondary indexes of findings."""
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS bench_shape, bench_minimal"))
        connection.execute(sa.text("CREATE TABLE bench_shape LIKE findings"))
        connection.execute(sa.text("CREATE TABLE bench_minimal LIKE findings"))
        for name in secondary_indexes(connection, "bench_minimal"):
            if name != "uq_findings_site_dedup":
                connection.execute(sa.text(f"ALTER TABLE bench_minimal DROP INDEX `{name}`"))
        return secondary_indexes(connection, "bench_shape")


def secondary_indexes(connection, table: str) -> list[str]:
    return sorted(
        {row[2] for row in connection.execute(sa.text(f"SHOW INDEX FROM `{table}`")) if row[2] != "PRIMARY"}
    )


def index_definitions(connection, table: str) -> dict[str, str]:
    columns: dict[str, list] = {}
    for row in connection.execute(sa.text(f"SHOW INDEX FROM `{table}`")):
        columns.setdefault(row[2], []).append((row[3], f"`{row[4]}`"))
    return {name: ", ".join(column for _, column in sorted(parts)) for name, parts in columns.items()}


# --- the index audit -------------------------------------------------------------------------------------

AUDIT_SITES = 500


def audit(args) -> None:
    """Which statements use which index of `findings`, and which lose their index when it is ignored."""
    from flask_migrate import upgrade
    from sqlalchemy.dialects import mysql

    from services import findings as finding_service
    from services.app import create_core_app
    from services.extensions import db
    from services.models import ACTIVE_STATUSES, Finding, Site, SiteMember, User

    app = create_core_app(role="bench")
    logging.getLogger("services").setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
        admin = User(username="admin", password_hash="x", role="admin")
        operator = User(username="operator", password_hash="x", role="operator")
        db.session.add_all([admin, operator])
        db.session.flush()
        db.session.add_all(
            Site(owner_id=admin.id, name=f"s{n}", url=f"https://s{n}.example.test/", paused=True)
            for n in range(AUDIT_SITES)
        )
        db.session.flush()
        site_ids = sorted(db.session.scalars(sa.select(Site.id)))
        big = site_ids[0]
        db.session.add_all(
            SiteMember(site_id=sid, user_id=operator.id, permission="read") for sid in site_ids[:50]
        )
        db.session.commit()
        count = args.audit
        started = time.perf_counter()
        with db.engine.begin() as connection:
            # A tenth in the first site, the rest spread; 3 scanners and a rare one; realistic statuses.
            for start in range(0, count, 100_000):
                size = min(100_000, count - start)
                connection.execute(
                    sa.text(
                        "INSERT INTO findings (site_id, scanner, dedup_key, rule_id, title, severity, severity_rank,"
                        " status, host, path, param, location, description, cwe, `references`, evidence, note,"
                        " first_seen_at, last_seen_at, fixed_at, last_import_id, created_at, updated_at)"
                        " SELECT IF(n % 10 = 0, :big, :first + n % :sites), "
                        " IF(n % 1000 = 7, 'cloudeye', ELT(1 + n % 3, 'nuclei', 'zap', 'sarif')), SHA2(n, 256),"
                        " CONCAT('rule-', n % 400), CONCAT('Finding ', n), ELT(1 + sev, 'info', 'low', 'medium',"
                        " 'high', 'critical'), sev, ELT(1 + n % 10, 'open', 'open', 'open', 'open', 'open', 'fixed',"
                        " 'fixed', 'confirmed', 'false_positive', 'accepted_risk'), 'h.example.test',"
                        " CONCAT('/p/', n), '', CONCAT('https://h.example.test/p/', n), NULL, NULL, '[]', NULL,"
                        " NULL, UTC_TIMESTAMP() - INTERVAL (n % 365) DAY, UTC_TIMESTAMP() - INTERVAL (n % 30) DAY,"
                        " NULL, NULL, UTC_TIMESTAMP(), UTC_TIMESTAMP()"
                        f" FROM (SELECT seq AS n, seq % 5 AS sev FROM seq_{start + 1}_to_{start + size}) AS g"
                    ),
                    {"big": big, "first": site_ids[1], "sites": AUDIT_SITES - 1},
                )
            connection.execute(sa.text("ANALYZE TABLE findings"))
        print(
            f"{count:,} findings over {AUDIT_SITES} sites ({count // 10:,} in site {big}) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        admin, operator = db.session.get(User, admin.id), db.session.get(User, operator.id)

        filters = {
            "-": {},
            "severity": {"severity": ["high"]},
            "status": {"status": ["open", "confirmed"]},
            "scanner": {"scanner": "zap"},
            "scanner (rare)": {"scanner": "cloudeye"},
            "severity+status": {"severity": ["high"], "status": ["open"]},
        }
        cases = []
        for who, user, site_id in (
            ("admin", admin, None),
            ("big site", admin, big),
            ("small site", admin, site_ids[-1]),
            ("operator", operator, None),
        ):
            for filter_name, filter_args in filters.items():
                for sort in finding_service.SORTS:
                    query = finding_service.list_findings(user, site_id=site_id, sort=sort, **filter_args)
                    cases.append((f"/bugs {who} {filter_name} sort={sort}", query.limit(20)))
                query = finding_service.list_findings(user, site_id=site_id, **filter_args)
                cases.append(
                    (
                        f"/bugs {who} {filter_name} COUNT",
                        sa.select(sa.func.count()).select_from(query.order_by(None).subquery()),
                    )
                )
        keys = [f"{n:064x}" for n in range(1000)]
        cases += [
            (
                "import: dedup lookup",
                sa.select(Finding.id).where(Finding.site_id == big, Finding.dedup_key.in_(keys)),
            ),
            (
                "import: close_missing",
                sa.update(Finding.__table__)
                .where(
                    Finding.site_id == big,
                    Finding.scanner == "nuclei",
                    Finding.status.in_(ACTIVE_STATUSES),
                    Finding.last_seen_at != sa.func.utc_timestamp(),
                )
                .values(status="fixed"),
            ),
            (
                "site page: open counts",
                sa.select(Finding.site_id, Finding.severity_rank, sa.func.count())
                .where(Finding.site_id.in_(site_ids[:50]), Finding.status.in_(ACTIVE_STATUSES))
                .group_by(Finding.site_id, Finding.severity_rank),
            ),
        ]
        compiled = [
            (label, str(stmt.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True})))
            for label, stmt in cases
        ]

        def plans() -> dict[str, tuple[str, bool, int]]:
            """label -> (indexes used, whether it reads the table or sorts it whole, rows estimated)."""
            found = {}
            for label, sql in compiled:
                try:
                    rows = [dict(r._mapping) for r in db.session.execute(sa.text("EXPLAIN " + sql))]
                except sa.exc.DBAPIError as exc:
                    db.session.rollback()
                    print(f"  EXPLAIN of {label} failed: {exc.orig}")
                    found[label] = ("failed", True, 0)
                    continue
                finally:
                    db.session.commit()  # no metadata lock kept on findings (the ALTERs wait for it)
                own = [
                    r
                    for r in rows
                    if r.get("table") in ("findings", "<derived2>")
                    or (r.get("table") or "").startswith("findings")
                ]
                step = next((r for r in rows if r.get("table") == "findings"), own[0] if own else rows[0])
                extra = step.get("Extra") or ""
                poor = step.get("type") == "ALL" or "filesort" in extra
                found[label] = (step.get("key") or "-", poor, int(str(step.get("rows") or 0).split()[0]))
            db.session.rollback()
            return found

        with db.engine.connect() as connection:
            indexes = [name for name in secondary_indexes(connection, "findings")]
        base = plans()
        used: dict[str, list[str]] = {name: [] for name in ["PRIMARY", *indexes]}
        for label, (key, _poor, _rows) in base.items():
            for name in key.split(","):
                used.setdefault(name, []).append(label)
        print("\nplans (key, rows estimated; * = reads the whole table or sorts every match):")
        for label, (key, poor, rows) in base.items():
            print(f"  {label:<52} {key:<34} {rows:>9}{' *' if poor else ''}")
        print("\neach index ignored in turn: the statements whose plan gets worse (a full scan or sort, or")
        print("more than twice the rows)")
        for name in indexes:
            if name == "uq_findings_site_dedup":
                print(f"  {name}: the dedup key itself (unique), used by the import's lookups; never dropped")
                continue
            else:
                with db.engine.begin() as connection:
                    connection.execute(sa.text(f"ALTER TABLE findings ALTER INDEX `{name}` IGNORED"))
                try:
                    without = plans()
                finally:
                    with db.engine.begin() as connection:
                        connection.execute(sa.text(f"ALTER TABLE findings ALTER INDEX `{name}` NOT IGNORED"))
                worse = [
                    label
                    for label, (key, poor, rows) in without.items()
                    if (poor and not base[label][1]) or rows > 2 * max(base[label][2], 20)
                ]
            print(f"  {name}: used by {len(used.get(name, []))} plans; worse without it: {len(worse)}")
            for label in worse:
                print(
                    f"      {label}: {base[label][0]} ({base[label][2]}) -> {without[label][0]} ({without[label][2]})"
                )


# --- through the API -------------------------------------------------------------------------------------


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


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


class Stack:
    """nginx (nginx/render.sh) -> gunicorn (gevent, api/gunicorn.conf.py) and one sync worker."""

    def __init__(self, args, workdir: Path, env: dict):
        self.workdir = workdir
        self.api_port = free_port(args.port, args.port + 4)
        self.port = free_port(args.port + 5, args.port + 10)
        self.env = {
            **os.environ,
            **env,
            "REDIS_URL": args.redis,
            "LOG_LEVEL": "info",
            "GUNICORN_BIND": f"127.0.0.1:{self.api_port}",
            "GUNICORN_WORKERS": str(args.workers),
            "GUNICORN_WORKER_CLASS": "gevent",
            "GUNICORN_ACCESSLOG": "/dev/null",
            "GUNICORN_PIDFILE": str(workdir / "gunicorn.pid"),
            "GUNICORN_MAX_REQUESTS": "0",  # no recycling mid-run
            "SYNC_INBOX_INTERVAL_S": "1",  # the imports queue is looked at every second
            "SYNC_CONCURRENCY": "10",
        }
        self.processes: list[subprocess.Popen] = []

    def start(self) -> str:
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "api/gunicorn.conf.py", "cloudeye:app"],
            cwd=ROOT, env=self.env, stdout=open(self.workdir / "gunicorn.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(gunicorn)
        self.gunicorn = gunicorn
        wait_ready(f"http://127.0.0.1:{self.api_port}/healthz", gunicorn)
        nginx_dir = self.workdir / "nginx"
        render_env = {
            "PATH": os.environ["PATH"] + ":/usr/sbin",
            "NGINX_OUT_DIR": str(nginx_dir),
            "NGINX_LISTEN": f"127.0.0.1:{self.port}",
            "NGINX_UPSTREAM": f"127.0.0.1:{self.api_port}",
            "NGINX_PID": str(nginx_dir / "nginx.pid"),
            "NGINX_TEMP_DIR": str(nginx_dir / "tmp"),
            "NGINX_ACCESS_LOGS": "/dev/null",
            "NGINX_ERROR_LOGS": str(self.workdir / "nginx-error.log"),
            "NGINX_WORKER_PROCESSES": "1",
        }
        if os.geteuid() == 0:
            render_env["NGINX_USER"] = "www-data"
        subprocess.run(["sh", str(ROOT / "nginx/render.sh")], env=render_env, check=True, capture_output=True)
        nginx_binary = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = subprocess.Popen(
            [nginx_binary, "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-e",
             str(self.workdir / "nginx-error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(nginx)
        url = f"http://127.0.0.1:{self.port}"
        wait_ready(f"{url}/healthz", nginx)
        self.sync = subprocess.Popen(
            [sys.executable, "sync_main.py"],
            cwd=ROOT, env=self.env, stdout=open(self.workdir / "sync.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(self.sync)
        return url

    def api_workers(self) -> list[int]:
        master = self.gunicorn.pid
        return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if "nginx" in str(process.args[0]) else signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """GET /health every 20 ms (one keepalive connection), and the RSS of the given processes every 0.1 s."""

    def __init__(self, url: str, pids: dict[str, list[int]]):
        super().__init__(daemon=True)
        self.url = url
        self.pids = pids
        self.latencies: list[tuple[float, float]] = []  # (when, seconds)
        self.rss: dict[str, float] = {name: 0.0 for name in pids}
        self.errors = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        next_rss = 0.0
        while not self.stopping.is_set():
            started = time.perf_counter()
            try:
                ok = session.get(self.url, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - started
            self.latencies.append((started, elapsed))
            self.errors += not ok
            if started >= next_rss:
                for name, pids in self.pids.items():
                    self.rss[name] = max(self.rss[name], *(rss_mb(pid) for pid in pids))
                next_rss = started + 0.1
            self.stopping.wait(max(0.0, 0.02 - elapsed))

    def between(self, start: float, end: float) -> list[float]:
        return [latency for when, latency in self.latencies if start <= when <= end]


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"n={len(ordered)} p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def multipart(path: Path, fields: dict) -> tuple[str, int, object]:
    """A multipart/form-data body streamed from the file: (content type, length, iterator of chunks)."""
    boundary = secrets.token_hex(16)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        yield head
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                yield chunk
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + path.stat().st_size + len(tail), chunks()


def post_and_wait(base: str, token: str, path: Path, site_id: int) -> tuple[float, float, dict]:
    """POST the report, then poll its import until done: (seconds of the POST, seconds until done, import)."""
    content_type, length, body = multipart(path, {"site_id": site_id})
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    started = time.perf_counter()
    connection.putrequest("POST", f"{API_PREFIX}/bugs/imports")
    for name, value in (
        ("Authorization", f"Bearer {token}"),
        ("Content-Type", content_type),
        ("Content-Length", str(length)),
    ):
        connection.putheader(name, value)
    connection.endheaders()
    for chunk in body:
        connection.send(chunk)
    response = connection.getresponse()
    record = json.loads(response.read())
    posted = time.perf_counter() - started
    location = response.getheader("Location")
    connection.close()
    if response.status == 201:
        return posted, posted, record
    assert response.status == 202, (response.status, record)
    while record["state"] in ("queued", "running"):
        time.sleep(0.2)
        record = requests.get(
            f"{base}{location}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
    assert record["state"] == "done", record
    return posted, time.perf_counter() - started, record


def run_api(args, workdir: Path, env: dict, results: dict) -> None:
    from services.security import hash_token, new_token

    engine = sa.create_engine(env["DATABASE_URL"])
    token = new_token()
    with engine.begin() as connection:
        owner_id = connection.scalar(sa.text("SELECT id FROM users WHERE username = 'bench'"))
        connection.execute(
            sa.text(
                "INSERT INTO api_tokens (user_id, kind, name, token_hash, prefix, created_at)"
                " VALUES (:user, 'api', 'bench', :hash, :prefix, UTC_TIMESTAMP())"
            ),
            {"user": owner_id, "hash": hash_token(token), "prefix": token[:10]},
        )
    engine.dispose()
    site_ids = results["api_sites"]

    stack = Stack(args, workdir, env)
    try:
        base = stack.start()
        print(f"\nthrough nginx -> gunicorn ({args.workers} gevent workers) -> sync worker, {base}")
        health_url = f"{base}{API_PREFIX}/health"

        report = workdir / "report.jsonl"
        # Interleaved with the bare INSERTs again, so that the ratios compare times of the same moments.
        columns, raw_rows = results["baseline"]
        engine = sa.create_engine(env["DATABASE_URL"])
        totals, shapes, minimals = [], [], []
        for number in range(max(1, args.repeat)):
            started = time.perf_counter()
            posted, total, record = post_and_wait(base, token, report, site_ids[number])
            totals.append(total)
            assert record["created"] == results["count"], record
            print(f"  {'API import (202 + worker)':<26} {total:8.2f} s (the POST answered in {posted:.2f} s)")
            make_baseline_tables(engine)
            for label, table, kept in (
                ("INSERT same shape", "bench_shape", shapes),
                ("INSERT minimal", "bench_minimal", minimals),
            ):
                timed(
                    f"{label} (API phase)",
                    results,
                    functools.partial(insert_rows, engine, table, columns, raw_rows),
                )
                kept.append(results[f"{label} (API phase)"])
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS bench_shape, bench_minimal"))
        engine.dispose()
        results["API import"] = min(totals)
        results["API INSERT same shape"], results["API INSERT minimal"] = min(shapes), min(minimals)

        if args.big_mb:
            big = workdir / "big.jsonl"
            findings, size = write_report(big, size=args.big_mb * 1024 * 1024)
            # /health is only requested from here on: 50 requests a second through the stack are load too,
            # which the 100,000-finding imports above are measured without.
            sampler = Sampler(health_url, {"api": stack.api_workers(), "sync": [stack.sync.pid]})
            sampler.start()
            time.sleep(10)
            idle = sampler.between(0, time.perf_counter())
            results["health_idle"] = idle
            print(f"  /health idle: {percentiles(idle)}")
            sampler.rss = {name: 0.0 for name in sampler.rss}
            started = time.perf_counter()
            posted, total, record = post_and_wait(base, token, big, site_ids[-1])
            assert record["created"] == findings, record
            upload = sampler.between(started, started + posted)
            during = sampler.between(started, started + total)
            results["big"] = {
                "findings": findings,
                "bytes": size,
                "posted": posted,
                "total": total,
                "health_upload": upload,
                "health_during": during,
                "rss": dict(sampler.rss),
            }
            print(
                f"  {size / 1048576:.0f} MB report ({findings} findings): POST answered in {posted:.2f} s, "
                f"done after {total:.2f} s"
            )
            print(f"  /health during the upload: {percentiles(upload)}")
            print(f"  /health until done:        {percentiles(during)}")
            print(
                f"  peak RSS: api workers {sampler.rss['api']:.0f} MB (each), "
                f"sync worker {sampler.rss['sync']:.0f} MB"
            )
            sampler.stopping.set()
            sampler.join(35)
            print(f"  /health errors: {sampler.errors}")
        print()
        print(
            f"  fastest of {max(1, args.repeat)}: API import {results['API import']:.2f} s, INSERT same shape "
            f"{results['API INSERT same shape']:.2f} s, INSERT minimal {results['API INSERT minimal']:.2f} s"
        )
        print(
            f"  API import / INSERT same shape {results['API import'] / results['API INSERT same shape']:.2f}"
        )
        print(f"  API import / INSERT minimal    {results['API import'] / results['API INSERT minimal']:.2f}")
        print(f"  API import / in-process import {results['API import'] / results['import']:.2f}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
