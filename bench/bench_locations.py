"""Benchmark of locations (by hand, `make bench`; not in CI): what claiming and deciding a check costs.

Three measurements in one run, each in a fresh scratch database built by the migrations of its own code:

- **today**: N sites checked from any location, with the code from before locations (`--baseline`, a git
  ref; default the parent of the commit that added services/locations.py), exported with `git archive`
  into a temporary directory (no checkout is touched);
- **1 location**: the same N sites (no `locations`) with this code;
- **3 locations**: N sites with `locations` [a, b, c] (quorum 2) with this code: three checks a slot,
  each claimed by its location's worker and each a vote.

Each: the sites are made due `--slots` times; each time the worker's own paths handle every due check —
`claim_due` in batches of 200, then `sync.results.store` of the batch with a synthetic probe result (no
network: what is measured is the database side and the decision) — on one database connection. Counted:
statements and rows written (MariaDB's session counters Handler_write + Handler_update + Handler_delete),
the process' CPU and the wall time — per slot of a site (one decision) and per result.

    .venv/bin/python bench/bench_locations.py --sites 2000 --slots 5

The scratch databases (`--db`, default cloudeye_bench_locations) are dropped and created again; Redis
database 13 (`--redis`) holds the three locations' heartbeats. Nothing else is touched.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 200
COUNTERS = ("Handler_write", "Handler_update", "Handler_delete", "Questions")


# --- one measurement, in a process of its own on one code tree --------------------------------------------


def measure(kind: str, root: Path, database: str, mysql: str, redis_url: str, sites: int, slots: int) -> dict:
    sys.path.insert(0, str(root))
    import sqlalchemy as sa

    workdir = Path(tempfile.mkdtemp(prefix="cloudeye-bench-locations-"))
    url = f"{mysql}/{database}?charset=utf8mb4"
    os.environ.update(
        CLOUDEYE_ENV="testing",
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        DATA_DIR=str(workdir / "data"),
        LOG_DIR=str(workdir / "log"),
        LOG_LEVEL="warning",
        DB_POOL_SIZE="1",  # one connection: its session counters are the whole cost
        DB_MAX_OVERFLOW="0",
        SYNC_HEARTBEAT_TTL_S="600",
        FLASK_APP="cloudeye.py",
    )
    server = sa.create_engine(f"{mysql}/?charset=utf8mb4")
    with server.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{database}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    server.dispose()
    subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "db", "upgrade"],
        cwd=root,
        env=os.environ,
        check=True,
        capture_output=True,
    )

    import services
    from services.app import create_core_app
    from services.extensions import db
    from sync.probe import ProbeResult
    from sync.results import Outcome, store

    assert Path(services.__file__).resolve().is_relative_to(root.resolve()), services.__file__
    try:
        from services.scheduler import claim_due

        def claim(location):
            return claim_due(BATCH, 60, location, any_location=kind == "any")
    except ImportError:  # the code from before locations
        from sync.scheduler import claim_due

        def claim(location):
            return claim_due(BATCH, 60)

    app = create_core_app(role="bench")
    with app.app_context():
        cache_store = app.extensions["cloudeye_cache"].store
        cache_store.flushdb()
        _load(db, sa, kind, sites)
        names = ["a", "b", "c"] if kind == "three" else ["z"]
        if kind == "three":
            from services import locations

            for name in names:
                locations.beat(f"bench-{name}", name, {})
        totals = dict.fromkeys((*COUNTERS, "cpu_s", "wall_s", "results"), 0.0)
        for _ in range(slots):
            table = "site_locations" if kind == "three" else "sites"
            db.session.execute(sa.text(f"UPDATE {table} SET next_check_at = :now"), {"now": _now()})
            db.session.commit()
            before = _counters(db, sa)
            cpu, wall = time.process_time(), time.perf_counter()
            for name in names:
                while claims := claim(name):
                    result = ProbeResult(datetime.now(UTC), True, http_status=200, response_ms=50.0)
                    report = store([Outcome(c, result) for c in claims])
                    totals["results"] += report.stored
                    db.session.remove()
            totals["cpu_s"] += time.process_time() - cpu
            totals["wall_s"] += time.perf_counter() - wall
            after = _counters(db, sa)
            for counter in COUNTERS:
                totals[counter] += after[counter] - before[counter] - (1 if counter == "Questions" else 0)
        state = db.session.execute(sa.text("SELECT state, COUNT(*) FROM sites GROUP BY state")).all()
    return {"kind": kind, "sites": sites, "slots": slots, **totals, "states": {s: n for s, n in state}}


def _now():
    return datetime.now(UTC).replace(tzinfo=None)


def _counters(db, sa) -> dict:
    rows = db.session.execute(
        sa.text(f"SHOW SESSION STATUS WHERE Variable_name IN ({', '.join(repr(c) for c in COUNTERS)})")
    ).all()
    db.session.commit()
    return {name: int(value) for name, value in rows}


def _load(db, sa, kind: str, count: int) -> None:
    now = _now()
    owner = db.session.execute(
        sa.text(
            "INSERT INTO users (username, password_hash, role, is_active, created_at, updated_at) "
            "VALUES ('bench', '-', 'operator', 1, :now, :now)"
        ),
        {"now": now},
    ).lastrowid
    columns = db.session.execute(sa.text("SHOW COLUMNS FROM sites")).scalars().all()
    sites = []
    for i in range(count):
        site = {
            "owner_id": owner, "name": f"bench {i}", "url": f"http://127.0.0.1:9/s{i}", "check_interval_s": 60,
            "timeout_s": 10, "accepted_status": "200-399", "keyword_absent": False, "max_retries": 0,
            "tamper_enabled": False, "tamper_threshold": 0.05, "tamper_ignore": "[]", "forbidden_keywords": "[]",
            "paused": False, "state": "unknown", "consecutive_failures": 0, "next_check_at": now,
            "created_at": now, "updated_at": now,
        }  # fmt: skip
        if "locations" in columns:
            site["locations"] = '["a", "b", "c"]' if kind == "three" else "[]"
            if kind == "three":
                site["next_check_at"] = None
        sites.append(site)
    names = list(sites[0])
    insert = sa.text(f"INSERT INTO sites ({', '.join(names)}) VALUES ({', '.join(':' + c for c in names)})")
    for offset in range(0, count, 2000):
        db.session.execute(insert, sites[offset : offset + 2000])
    if kind == "three":
        db.session.execute(
            sa.text(
                "INSERT INTO site_locations (site_id, location, next_check_at, state, consecutive_failures) "
                "SELECT s.id, l.name, :now, 'unknown', 0 FROM sites s "
                "CROSS JOIN (SELECT 'a' AS name UNION ALL SELECT 'b' UNION ALL SELECT 'c') l"
            ),
            {"now": now},
        )
    db.session.commit()


# --- the run ---------------------------------------------------------------------------------------------


def _baseline_ref() -> str:
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "services/locations.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("services/locations.py has no history here: give --baseline")
    return f"{added[-1]}^"


def _export(ref: str, directory: Path) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return commit


def _run(kind: str, root: Path, args) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            kind,
            "--root",
            str(root),
            "--db",
            f"{args.db}_{kind}",
            "--mysql",
            args.mysql,
            "--redis",
            args.redis,
            "--sites",
            str(args.sites),
            "--slots",
            str(args.slots),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if result.returncode != 0:
        raise SystemExit(f"measuring {kind} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _per(figures: dict, unit: float) -> dict:
    writes = figures["Handler_write"] + figures["Handler_update"] + figures["Handler_delete"]
    return {
        "statements": figures["Questions"] / unit,
        "rows written": writes / unit,
        "CPU ms": 1000 * figures["cpu_s"] / unit,
        "wall ms": 1000 * figures["wall_s"] / unit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=5)
    parser.add_argument("--baseline", help="git ref of the code before locations")
    parser.add_argument("--db", default="cloudeye_bench_locations")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        figures = measure(
            args.measure, Path(args.root), args.db, args.mysql, args.redis, args.sites, args.slots
        )
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory(prefix="cloudeye-baseline-") as directory:
        commit = _export(args.baseline or _baseline_ref(), Path(directory))
        print(f"{args.sites} sites x {args.slots} slots; today = {commit}; batches of {BATCH}")
        runs = {
            "today, any location": _run("any", Path(directory), args),
            "1 location": _run("any", ROOT, args),
            "3 locations": _run("three", ROOT, args),
        }
    slots = args.sites * args.slots
    table = {name: _per(figures, slots) for name, figures in runs.items()}
    per_result = _per(runs["3 locations"], runs["3 locations"]["results"])
    print(f"\n{'per slot of a site':<24}" + "".join(f"{column:>16}" for column in table["1 location"]))
    for name, row in table.items():
        print(f"{name:<24}" + "".join(f"{value:>16.2f}" for value in row.values()))
    print(f"{'3 locations, per result':<24}" + "".join(f"{value:>16.2f}" for value in per_result.values()))
    base, one, three = table["today, any location"], table["1 location"], table["3 locations"]
    print("\nratios" + " " * 18 + "".join(f"{column:>16}" for column in one))
    print(f"{'1 location / today':<24}" + "".join(f"{one[c] / base[c]:>16.2f}" for c in one))
    print(f"{'3 locations / 1':<24}" + "".join(f"{three[c] / one[c]:>16.2f}" for c in one))
    for name, figures in runs.items():
        print(f"{name}: {int(figures['results'])} results stored, states {figures['states']}")


if __name__ == "__main__":
    main()
