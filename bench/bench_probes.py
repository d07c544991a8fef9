"""Benchmark of the sync worker (by hand, not in CI).

1. raw probe throughput: the worker's Prober on a thread pool of SYNC_CONCURRENCY against a local server
   that answers every request after 100 ms -> probes/s, and so how many sites one worker could check
   every 60 s if probing were all it did;
2. a real run: N sites on a 60 s interval (due times spread over the first minute) in a scratch MariaDB
   database, one real `sync_main.py` process for a few minutes -> checks stored, lateness of each check
   (checked_at - due_at) per minute (growing lateness = drift), missed slots, the worker's CPU.

    .venv/bin/python bench/bench_probes.py --raw 6000 --sites 10000 --duration 240

The server is one asyncio process on 127.0.0.1 (one port, a path per site). The scratch database
(`--db`, default cloudeye_bench) is dropped and created again; nothing else is touched.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = (
    b"<html><head><title>bench</title></head><body><h1>Welcome</h1>"
    + b"<p>lorem ipsum dolor</p>" * 200
    + b"</body></html>"
)


# --- the slow server --------------------------------------------------------------------------------


async def _handle(reader, writer, delay):
    try:
        while True:
            line = await reader.readline()
            if not line or line in (b"\r\n", b"\n"):
                break
        await asyncio.sleep(delay)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
            b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" % len(PAGE) + PAGE
        )
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def serve(port: int, delay: float) -> None:
    async def main():
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, delay), "127.0.0.1", port, backlog=8192, reuse_address=True
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_server(delay: float, port: int) -> tuple[subprocess.Popen, int]:
    import socket

    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--delay", str(delay)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the bench server did not start")


# --- 1. raw throughput ------------------------------------------------------------------------------


def raw_throughput(port: int, probes: int, concurrency: int) -> dict:
    from sync.probe import Prober, Target

    prober = Prober()
    targets = [
        Target(site_id=i, url=f"http://127.0.0.1:{port}/s{i}", timeout_s=10, keyword="Welcome")
        for i in range(probes)
    ]
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(prober.probe, targets[: concurrency * 2]))  # warm up the threads
        cpu0, start = time.process_time(), time.perf_counter()
        results = list(pool.map(prober.probe, targets))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    times = sorted(r.response_ms for r in results)
    return {
        "probes": probes,
        "up": sum(r.up for r in results),
        "probes_per_s": probes / elapsed,
        "cpu_ms_per_probe": 1000 * cpu / probes,
        "response_ms_p50": times[len(times) // 2],
        "response_ms_p95": times[int(0.95 * (len(times) - 1))],
    }


# --- 2. a real worker on N sites --------------------------------------------------------------------


def _prepare_database(url_base: str, name: str, env: dict, sites: int, interval: int, port: int) -> datetime:
    import sqlalchemy as sa

    engine = sa.create_engine(f"{url_base}/?charset=utf8mb4")
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    engine.dispose()
    subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )

    os.environ.update(env)
    from services.app import create_core_app
    from services.extensions import db
    from services.models import Site, User

    app = create_core_app(role="cli")
    with app.app_context():
        owner = User(username="bench", password_hash="-", role="operator")
        db.session.add(owner)
        db.session.commit()
        start = datetime.now(UTC) + timedelta(seconds=15)  # time for the worker to start
        rows = [
            {
                "owner_id": owner.id,
                "name": f"bench {i}",
                "url": f"http://127.0.0.1:{port}/s{i}",
                "check_interval_s": interval,
                "timeout_s": 10,
                "accepted_status": "200-399",
                "keyword": "Welcome",
                "keyword_absent": False,
                "max_retries": 0,
                "tamper_enabled": False,
                "tamper_threshold": 0.05,
                "tamper_ignore": [],
                "forbidden_keywords": [],
                "paused": False,
                "state": "unknown",
                "consecutive_failures": 0,
                "next_check_at": start + timedelta(seconds=interval * i / sites),
                "created_at": start,
                "updated_at": start,
            }
            for i in range(sites)
        ]
        for offset in range(0, sites, 2000):
            db.session.execute(sa.insert(Site.__table__), rows[offset : offset + 2000])
        db.session.commit()
    return start


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_by_role(pid: int, stats: dict) -> Counter:
    """CPU seconds of the worker's threads by role (from the thread ids its counters file lists)."""
    cpu: Counter = Counter()
    for tid, role in stats.get("threads", {}).items():
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended: its time is lost to this split, not to the process total
        cpu[role] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return cpu


def _read_stats(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"statements": [], "redis": {}}


def _stats_delta(before: list[dict], after: list[dict]) -> tuple[Counter, Counter]:
    """Statements by (thread role, kind) and Redis round trips by role, summed over the workers, sent
    between the two readings."""
    statements, rounds = Counter(), Counter()
    for old, new in zip(before, after, strict=True):
        for role, kind, count in new["statements"]:
            statements[(role, kind)] += count
        for role, kind, count in old["statements"]:
            statements[(role, kind)] -= count
        for role, count in new["redis"].items():
            rounds[role] += count - old["redis"].get(role, 0)
    return statements, rounds


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def checkout(revision: str) -> Path:
    """The code of `revision` in a scratch directory (`git archive`): the baseline of --versus."""
    target = Path(tempfile.mkdtemp(prefix="cloudeye-bench-code-"))
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def real_run(
    args, port: int, sites: int, replicas: int = 1, concurrency: int | None = None, code: Path | None = None
) -> dict:
    """`replicas` sync worker processes (bench/sync_counted.py: sync_main.py with counters, of this
    checkout or of `code`) sharing `sites` sites for args.duration seconds from the first due time."""
    import sqlalchemy as sa

    workdir = tempfile.mkdtemp(prefix="cloudeye-bench-")
    url = f"{args.mysql}/{args.db}?charset=utf8mb4"
    env = {
        **os.environ,
        "CLOUDEYE_ENV": "testing",
        "DATABASE_URL": url,
        "REDIS_URL": args.redis,
        "DATA_DIR": f"{workdir}/data",
        "LOG_DIR": f"{workdir}/log",
        "LOG_LEVEL": "info",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "SYNC_CONCURRENCY": str(concurrency or args.concurrency),
        "FLASK_APP": "cloudeye.py",
    }
    import redis

    redis.Redis.from_url(args.redis).flushdb()  # the bench's own Redis database: no fingerprints left over
    start = _prepare_database(args.mysql, args.db, env, sites, args.interval, port)
    stats_files = [f"{workdir}/stats-{n}.json" for n in range(replicas)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "bench/sync_counted.py")],
            cwd=code or ROOT,
            env={
                **env,
                "BENCH_STATS_FILE": stats_files[n],
                "SYNC_WORKER_ID": f"bench-{n}",
                "BENCH_CODE_ROOT": str(code or ROOT),
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(replicas)
    ]
    engine = sa.create_engine(url)

    def stored() -> int:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT COUNT(*) FROM usability_checks"))

    def snapshot() -> dict:
        stats = [_read_stats(f) for f in stats_files]
        by_role: Counter = Counter()
        for worker, counters in zip(workers, stats, strict=True):
            by_role.update(_cpu_by_role(worker.pid, counters))
        return {
            "cpu": sum(_cpu_seconds(w.pid) for w in workers),
            "cpu_by_role": by_role,
            "stats": stats,
            "stored": stored(),
            "at": time.monotonic(),
            "load": os.getloadavg()[0],
        }

    try:
        time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
        first = snapshot()
        warm = None
        if args.duration > 90:  # the first minute has every site's first findings reconciliation
            time.sleep(60)
            warm = snapshot()
        time.sleep(max(0.0, args.duration - (time.monotonic() - first["at"])))
        last = snapshot()
        end = datetime.now(UTC)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT site_id, due_at, checked_at, status FROM usability_checks WHERE due_at <= :end"),
            {"end": end.replace(tzinfo=None)},
        ).all()
        twice = connection.scalar(
            sa.text(
                "SELECT COUNT(*) FROM (SELECT site_id, due_at FROM usability_checks "
                "GROUP BY site_id, due_at HAVING COUNT(*) > 1) AS d"
            )
        )
    engine.dispose()
    cut = end - timedelta(seconds=15)
    rows = [r for r in rows if r.due_at.replace(tzinfo=UTC) <= cut]
    late = [(r.checked_at - r.due_at).total_seconds() for r in rows]
    by_minute: dict[int, list[float]] = {}
    for r, lateness in zip(rows, late, strict=True):
        by_minute.setdefault(int((r.due_at.replace(tzinfo=UTC) - start).total_seconds() // 60), []).append(
            lateness
        )
    expected = sum(
        1
        for i in range(sites)
        for k in range(args.duration // args.interval + 2)
        if start + timedelta(seconds=args.interval * i / sites + k * args.interval) <= cut
    )
    after_first_minute = [v for minute, values in by_minute.items() if minute >= 1 for v in values]
    costs = _costs(first, last)
    steady = _costs(warm, last) if warm else {}
    return {
        "sites": sites,
        "replicas": replicas,
        "concurrency": concurrency or args.concurrency,
        "checks_per_s": (last["stored"] - first["stored"]) / (last["at"] - first["at"]),
        "slots_due": expected,
        "slots_recorded": len(rows),
        "slots_recorded_twice": twice,
        "lateness_s_p50": _percentile(late, 0.5),
        "lateness_s_p95": _percentile(late, 0.95),
        "lateness_s_p99": _percentile(late, 0.99),
        "lateness_s_max": max(late) if late else None,
        "lateness_s_p99_after_first_minute": _percentile(after_first_minute, 0.99),
        "lateness_p99_by_minute": [
            round(_percentile(values, 0.99), 2) for _, values in sorted(by_minute.items())
        ],
        **costs,
        **{f"{name}_after_first_minute": value for name, value in steady.items() if "by" not in name},
        "load_average": round((first["load"] + last["load"]) / 2, 2),
    }


def _costs(before: dict, after: dict) -> dict:
    """Worker CPU, statements and Redis round trips per check stored between two snapshots."""
    statements, rounds = _stats_delta(before["stats"], after["stats"])
    checks = max(1, after["stored"] - before["stored"])
    cpu = after["cpu"] - before["cpu"]
    by_role: Counter = Counter()
    for (role, _kind), count in statements.items():
        by_role[role] += count
    sql = sum(count for (_, kind), count in statements.items() if kind not in ("COMMIT", "ROLLBACK"))
    return {
        "worker_cpu_percent": 100 * cpu / (after["at"] - before["at"]),
        "cpu_ms_per_check": 1000 * cpu / checks,
        "cpu_ms_per_check_by_thread": {
            role: round(1000 * (after["cpu_by_role"][role] - before["cpu_by_role"].get(role, 0)) / checks, 3)
            for role in sorted(after["cpu_by_role"])
        },
        "sql_per_check": sql / checks,
        "commits_per_check": sum(n for (_, kind), n in statements.items() if kind == "COMMIT") / checks,
        "sql_per_check_by_thread": {role: round(n / checks, 3) for role, n in sorted(by_role.items())},
        "sql_per_check_by_kind": {
            kind: round(sum(n for (_, k), n in statements.items() if k == kind) / checks, 3)
            for kind in sorted({kind for _, kind in statements})
        },
        "redis_round_trips_per_check": sum(rounds.values()) / checks,
    }


def holds(run: dict, p99_s: float) -> bool:
    """Whether a run kept up: every due slot recorded once and p99 lateness under the bound."""
    return (
        run["slots_recorded"] >= run["slots_due"]
        and not run["slots_recorded_twice"]
        and run["lateness_s_p99"] is not None
        and run["lateness_s_p99"] < p99_s
    )


def _show(run: dict) -> None:
    print("real run:", {k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()}, flush=True)


def capacity(args, port: int, replicas: int, sizes: list[int], concurrency: int | None = None) -> dict:
    """The largest of `sizes` (ascending) that `replicas` workers hold; stops at the first one they do
    not hold."""
    held, runs = 0, []
    for size in sizes:
        run = real_run(args, port, size, replicas, concurrency)
        _show(run)
        runs.append(run)
        if not holds(run, args.p99):
            break
        held = size
    return {"replicas": replicas, "held": held, "runs": runs}


def saturated(args, port: int, replicas: list[int], sites: int, concurrency: int | None = None) -> list[dict]:
    """Each count of replicas given more sites than it can check (missed slots are skipped, so it works
    flat out): checks/s sustained, and so the sites it holds on the interval (checks/s x interval)."""
    runs = []
    for count in replicas:
        run = real_run(args, port, sites, count, concurrency)
        run["capacity_sites"] = round(run["checks_per_s"] * args.interval)
        _show(run)
        runs.append(run)
    for run in runs[1:]:
        print(
            f"  -> {run['replicas']} replicas / {runs[0]['replicas']}: "
            f"{run['checks_per_s'] / runs[0]['checks_per_s']:.2f}x the checks/s "
            f"({run['capacity_sites']:,} vs {runs[0]['capacity_sites']:,} sites on {args.interval} s)",
            flush=True,
        )
    return runs


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.1, help="server answer delay (s)")
    parser.add_argument("--raw", type=int, default=6000, help="probes for the raw throughput (0: skip)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--sites", type=int, default=25000, help="sites of the one-worker run (0: skip)")
    parser.add_argument("--replicas", type=int, default=1, help="workers of that run")
    parser.add_argument(
        "--versus",
        default="",
        help="a git revision whose worker makes the same run first (the baseline: ratios printed)",
    )
    parser.add_argument(
        "--saturate",
        type=int,
        default=0,
        help="sites given to 1 and to 3 workers to measure what each sustains (0: skip)",
    )
    parser.add_argument(
        "--slot-bound",
        type=int,
        default=0,
        help="the same with SYNC_CONCURRENCY=--slot-concurrency and a server answering after "
        "--slot-delay: each replica limited by its probe slots, not by this machine (0: skip)",
    )
    parser.add_argument("--slot-concurrency", type=int, default=20)
    parser.add_argument("--slot-delay", type=float, default=1.0)
    parser.add_argument("--compare", default="1,3", help="replica counts compared (--saturate, --slot-bound)")
    parser.add_argument("--p99", type=float, default=5.0, help="lateness bound of 'holds' (s)")
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--duration", type=int, default=240, help="seconds of each real run")
    parser.add_argument("--port", type=int, default=19600, help="the bench server's port (+1: the slow one)")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--db", default="cloudeye_bench_w")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay)
        return

    print(f"load average at start: {os.getloadavg()}", flush=True)
    server, port = start_server(args.delay, args.port)
    try:
        if args.raw:
            raw = raw_throughput(port, args.raw, args.concurrency)
            print("raw probes:", {k: round(v, 2) if isinstance(v, float) else v for k, v in raw.items()})
            print(f"  -> one worker probes {raw['probes_per_s'] * 60:,.0f} sites per 60 s (probing only)")
        if args.sites and args.versus:
            print(f"== baseline: the worker of {args.versus}", flush=True)
            before = real_run(args, port, args.sites, args.replicas, code=checkout(args.versus))
            _show(before)
        if args.sites:
            run = real_run(args, port, args.sites, args.replicas)
            _show(run)
            if args.versus:
                for name in (
                    "cpu_ms_per_check",
                    "sql_per_check",
                    "commits_per_check",
                    "redis_round_trips_per_check",
                ):
                    for suffix in ("", "_after_first_minute"):
                        if before.get(name + suffix) and run.get(name + suffix) is not None:
                            print(
                                f"  {name + suffix}: {before[name + suffix]:.3f} -> {run[name + suffix]:.3f} "
                                f"({run[name + suffix] / before[name + suffix]:.2f}x)"
                            )
            print(
                f"  -> {args.replicas} worker(s) {'hold' if holds(run, args.p99) else 'do NOT hold'} "
                f"{args.sites:,} sites on {args.interval} s (p99 lateness {run['lateness_s_p99']:.2f} s, "
                f"{run['slots_recorded']:,}/{run['slots_due']:,} slots, {run['slots_recorded_twice']} twice); "
                f"{run['sql_per_check']:.2f} statements, {run['redis_round_trips_per_check']:.2f} Redis "
                f"round trips and {run['cpu_ms_per_check']:.2f} ms of worker CPU per check",
                flush=True,
            )
        if args.saturate:
            print(f"== CPU-bound: {args.saturate:,} sites, default settings", flush=True)
            saturated(args, port, _ints(args.compare), args.saturate)
        if args.slot_bound:
            print(
                f"== slot-bound: {args.slot_bound:,} sites, SYNC_CONCURRENCY={args.slot_concurrency}, "
                f"answers after {args.slot_delay} s",
                flush=True,
            )
            slow, slow_port = start_server(args.slot_delay, args.port + 1)
            try:
                saturated(args, slow_port, _ints(args.compare), args.slot_bound, args.slot_concurrency)
            finally:
                slow.terminate()
                slow.wait(10)
    finally:
        server.terminate()
        server.wait(10)
    print(f"load average at the end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
