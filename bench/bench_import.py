"""Benchmark: importing a big nuclei report against a bare bulk INSERT of the same rows, in one run.

    .venv/bin/python bench/bench_import.py [--count 100000] [--mysql mysql+pymysql://root@127.0.0.1:3306]

The server comes from --mysql or from DATABASE_URL (its database name is ignored). The benchmark creates
its own database `cloudeye_bench_import`, applies the migrations, and drops it at the end (--keep keeps it).

Measured, each on an empty site of its own unless said otherwise:
  parse only         reading the report with the nuclei parser, nothing written
  import             services.imports.import_report: parse, dedup, batched lookups, bulk inserts, commit
  re-import          the same report again into the same site: every finding unchanged
  re-import + close  the same report with close_missing (the set-based UPDATE finds nothing to close)
  SQLAlchemy INSERT  the finished rows (built beforehand, untimed) inserted with Core executemany, 1000 a batch
  DB-API executemany the same rows, already serialised, through cursor.executemany, 1000 a batch
The ratios compare the import with the two bare INSERTs of the very same rows.
"""

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "cloudeye_bench_import"
TEMPLATES = ("exposed-panel", "git-config", "xss-reflected", "open-redirect", "tech-detect")
SEVERITIES = ("high", "medium", "high", "low", "info")


def write_report(path: Path, count: int) -> int:
    """`count` distinct nuclei results as JSON lines, shaped like real nuclei output."""
    with path.open("w") as out:
        for number in range(count):
            kind = number % len(TEMPLATES)
            out.write(
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
                        "host": "https://bench.example.test",
                        "port": "443",
                        "scheme": "https",
                        "url": "https://bench.example.test",
                        "matched-at": f"https://bench.example.test/app/{number // len(TEMPLATES)}/page",
                        "ip": "127.0.0.1",
                        "timestamp": "2026-11-20T10:00:00.000000000+00:00",
                        "curl-command": f"curl -X GET 'https://bench.example.test/app/{number}'",
                        "matcher-status": True,
                    }
                )
                + "\n"
            )
    return path.stat().st_size


def server_url(args) -> str:
    raw = args.mysql or os.environ.get("DATABASE_URL")
    if not raw:
        sys.exit("give --mysql URL or DATABASE_URL (a MySQL/MariaDB server)")
    url = make_url(raw)
    if not url.drivername.startswith("mysql"):
        sys.exit(f"the benchmark needs MySQL/MariaDB, got {url.drivername}")
    return url.set(database=None).render_as_string(hide_password=False)


def timed(label: str, results: dict, func):
    started = time.perf_counter()
    value = func()
    results[label] = time.perf_counter() - started
    print(f"  {label:<22} {results[label]:8.2f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="findings in the generated report")
    parser.add_argument("--mysql", help="server URL, e.g. mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    server = server_url(args)
    admin = sa.create_engine(server + "/?charset=utf8mb4")
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{DB_NAME}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    workdir = tempfile.TemporaryDirectory(prefix="cloudeye-bench-")
    os.environ.update(
        {
            "CLOUDEYE_ENV": "development",
            "DATABASE_URL": f"{server}/{DB_NAME}?charset=utf8mb4",
            "DATA_DIR": workdir.name,
            "LOG_DIR": workdir.name,
            "LOG_LEVEL": "warning",
        }
    )
    os.environ.pop("REDIS_URL", None)
    try:
        run(args.count, Path(workdir.name))
    finally:
        if not args.keep:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{DB_NAME}`"))
        admin.dispose()
        workdir.cleanup()


def run(count: int, workdir: Path) -> None:
    from flask_migrate import upgrade

    from services.app import create_core_app
    from services.extensions import db
    from services.imports import FindingReconciler, import_report
    from services.models import Finding, Site, User
    from services.parsers.detect import open_report

    app = create_core_app(role="bench")
    logging.getLogger("services").setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
        owner = User(username="bench", password_hash="x", role="operator")
        db.session.add(owner)
        db.session.flush()
        sites = [
            Site(owner_id=owner.id, name=f"bench {n}", url=f"https://bench{n}.example.test/")
            for n in range(4)
        ]
        db.session.add_all(sites)
        db.session.commit()
        site_ids = [site.id for site in sites]

        report = workdir / "report.jsonl"
        size = write_report(report, count)
        version = db.session.scalar(sa.text("SELECT VERSION()"))
        print(
            f"{count} nuclei findings, {size / 1e6:.1f} MB; {version}; Python {platform.python_version()}; "
            f"{os.cpu_count()} CPUs"
        )
        results: dict[str, float] = {}

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
        record = timed("re-import", results, lambda: do_import(site_ids[0]))
        assert record.unchanged == count and record.created == 0, record
        record = timed("re-import + close", results, lambda: do_import(site_ids[0], close_missing=True))
        assert record.unchanged == count and record.closed == 0, record

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the baselines' rows

        # The very rows the import wrote, built with the engine's own row builder, outside the timing.
        reconciler = FindingReconciler(site_ids[1])
        with report.open("rb") as stream:
            _, findings = open_report(stream)
            rows = [reconciler._new_row(finding.dedup_key(), finding) for finding in findings]
        table = Finding.__table__

        def sqlalchemy_insert():
            with db.engine.begin() as connection:
                for start in range(0, len(rows), 1000):
                    connection.execute(sa.insert(table), rows[start : start + 1000])

        timed("SQLAlchemy INSERT", results, sqlalchemy_insert)

        # DB-API: the same rows, values already converted (naive UTC, JSON text), one executemany a batch.
        columns = [column.name for column in table.columns if column.name != "id"]
        processors = {
            name: table.c[name].type.bind_processor(db.engine.dialect)
            for name in columns
            if table.c[name].type.bind_processor(db.engine.dialect)
        }
        raw_rows = []
        for row in rows:
            values = dict(row, site_id=site_ids[2])
            raw_rows.append(
                tuple(
                    processors[name](values[name]) if name in processors else values[name] for name in columns
                )
            )
        statement = (
            f"INSERT INTO findings ({', '.join(f'`{name}`' for name in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )

        def dbapi_executemany():
            connection = db.engine.raw_connection()
            try:
                cursor = connection.cursor()
                for start in range(0, len(raw_rows), 1000):
                    cursor.executemany(statement, raw_rows[start : start + 1000])
                connection.commit()
            finally:
                connection.close()

        timed("DB-API executemany", results, dbapi_executemany)
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Finding))
        assert stored == 3 * count, stored

        print()
        print(f"  import / SQLAlchemy INSERT  {results['import'] / results['SQLAlchemy INSERT']:.2f}")
        print(f"  import / DB-API executemany {results['import'] / results['DB-API executemany']:.2f}")
        print(f"  re-import / import          {results['re-import'] / results['import']:.2f}")
        print(f"  parse only / import         {results['parse only'] / results['import']:.2f}")
        print(f"  import rate                 {count / results['import']:,.0f} findings/s")
        print(f"  peak RSS after the imports  {peak_mb:.0f} MB (whole process)")


if __name__ == "__main__":
    main()
