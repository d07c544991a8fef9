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
import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def start_server(delay: float) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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


def real_run(args, port: int) -> dict:
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
        "SYNC_CONCURRENCY": str(args.concurrency),
        "FLASK_APP": "cloudeye.py",
    }
    start = _prepare_database(args.mysql, args.db, env, args.sites, args.interval, port)
    worker = subprocess.Popen(
        [sys.executable, "sync_main.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
        cpu0 = _cpu_seconds(worker.pid)
        time.sleep(args.duration)
        cpu = _cpu_seconds(worker.pid) - cpu0
        end = datetime.now(UTC)
    finally:
        worker.terminate()
        worker.wait(60)

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT site_id, due_at, checked_at, status FROM usability_checks WHERE due_at <= :end"),
            {"end": end.replace(tzinfo=None)},
        ).all()
        due_slots = connection.scalar(
            sa.text("SELECT COUNT(*) FROM sites")
        )  # every site has exactly one slot per interval
    engine.dispose()
    late = [(r.checked_at - r.due_at).total_seconds() for r in rows]
    by_minute: dict[int, list[float]] = {}
    for r, lateness in zip(rows, late, strict=True):
        by_minute.setdefault(int((r.due_at.replace(tzinfo=UTC) - start).total_seconds() // 60), []).append(
            lateness
        )
    expected = sum(
        1
        for i in range(due_slots)
        for k in range(args.duration // args.interval + 2)
        if start + timedelta(seconds=args.interval * i / due_slots + k * args.interval)
        <= end - timedelta(seconds=15)
    )
    recorded_before_cut = sum(1 for r in rows if r.due_at.replace(tzinfo=UTC) <= end - timedelta(seconds=15))
    return {
        "sites": args.sites,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "checks": len(rows),
        "up": sum(1 for r in rows if r.status == "up"),
        "checks_per_s": len(rows) / args.duration,
        "slots_due_until_end_minus_15s": expected,
        "slots_recorded_until_end_minus_15s": recorded_before_cut,
        "lateness_s_p50": statistics.median(late) if late else None,
        "lateness_s_p95": sorted(late)[int(0.95 * (len(late) - 1))] if late else None,
        "lateness_s_max": max(late) if late else None,
        "lateness_p95_by_minute": {
            minute: round(sorted(values)[int(0.95 * (len(values) - 1))], 2)
            for minute, values in sorted(by_minute.items())
        },
        "worker_cpu_percent": 100 * cpu / args.duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.1, help="server answer delay (s)")
    parser.add_argument("--raw", type=int, default=6000, help="probes for the raw throughput (0: skip)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--sites", type=int, default=10000, help="sites for the real run (0: skip)")
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--duration", type=int, default=240, help="seconds of the real run")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--db", default="cloudeye_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay)
        return

    server, port = start_server(args.delay)
    try:
        if args.raw:
            raw = raw_throughput(port, args.raw, args.concurrency)
            print("raw probes:", {k: round(v, 2) if isinstance(v, float) else v for k, v in raw.items()})
            print(f"  -> one worker probes {raw['probes_per_s'] * 60:,.0f} sites per 60 s (probing only)")
        if args.sites:
            run = real_run(args, port)
            print("real run:", {k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()})
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
