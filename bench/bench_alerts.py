"""Benchmark of alert delivery (by hand, `make bench`; not in CI).

N sites on a 60 s interval, checked by one real `sync_main.py` process against a local server; after
`--warmup` seconds every site starts answering 503, so all of them go down within one interval. Two runs
in the same scratch database setup, only the channels differ:

- **without alerts**: no channels (the baseline);
- **with alerts**: one webhook channel per site (`site_ids` = that site), pointing at a local receiver
  that answers 204 at once: N `site.down` notifications to deliver at once.

Measured after the switch, in both runs over the same length of time: probe lateness (start - due time:
p50, p95, max) and the worker's CPU. In the alerts run: the outbox as the downs arrive (deliveries/s
from the first to the last `sent_at`, which the arrival of downs over one interval bounds; when the
last was sent), then a **burst**: `--after` seconds later every notification is put back to pending at
once (a backlog of N) and the time until all are sent again gives the drain rate (deliveries/s) while
the worker keeps probing. The ratio that matters: p95 lateness with alerts / without (goal: within 2x).

    .venv/bin/python bench/bench_alerts.py --sites 10000 --warmup 75 --after 120

The site server and the receiver are asyncio processes on 127.0.0.1. The scratch database (`--db`,
default cloudeye_bench_alerts) is dropped and created again for each run; nothing else is touched.
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGE = b"<html><body><h1>Welcome</h1>" + b"<p>lorem ipsum</p>" * 50 + b"</body></html>"


# --- the sites' server (up until the flag file exists) and the webhook receiver -----------------------


async def _site(reader, writer, flag: str):
    try:
        while True:
            line = await reader.readline()
            if not line or line in (b"\r\n", b"\n"):
                break
        if os.path.exists(flag):
            head, body = b"HTTP/1.1 503 Service Unavailable", b"down"
        else:
            await asyncio.sleep(0.05)
            head, body = b"HTTP/1.1 200 OK", PAGE
        writer.write(
            head + b"\r\nContent-Type: text/html\r\nX-Content-Type-Options: nosniff\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _receiver(reader, writer):
    """Answers every POST with 204, keeping the connection (the sender reuses it)."""
    try:
        while True:
            length = 0
            line = await reader.readline()
            if not line:
                return
            while line not in (b"\r\n", b"\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                line = await reader.readline()
            if length:
                await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def serve(kind: str, port: int, flag: str) -> None:
    async def main():
        handler = _receiver if kind == "receiver" else (lambda r, w: _site(r, w, flag))
        server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=8192, reuse_address=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(kind: str, flag: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), "--flag", flag])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the bench {kind} did not start")


# --- one run -------------------------------------------------------------------------------------------


def _prepare(args, env: dict, site_port: int, receiver_port: int | None) -> datetime:
    import sqlalchemy as sa

    engine = sa.create_engine(f"{args.mysql}/?charset=utf8mb4")
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{args.db}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{args.db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    engine.dispose()
    subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )

    engine = sa.create_engine(env["DATABASE_URL"])
    now = datetime.now(UTC).replace(tzinfo=None)
    start = now + timedelta(seconds=10)
    with engine.begin() as connection:
        owner = connection.execute(
            sa.text(
                "INSERT INTO users (username, password_hash, role, is_active, created_at, updated_at) "
                "VALUES ('bench', '-', 'operator', 1, :now, :now)"
            ),
            {"now": now},
        ).lastrowid
        sites = [
            {
                "owner_id": owner, "name": f"bench {i}", "url": f"http://127.0.0.1:{site_port}/s{i}",
                "check_interval_s": args.interval, "timeout_s": 10, "accepted_status": "200-399",
                "keyword_absent": False, "max_retries": 0, "tamper_enabled": False, "tamper_threshold": 0.05,
                "tamper_ignore": "[]", "forbidden_keywords": "[]", "paused": False, "state": "unknown",
                "consecutive_failures": 0, "next_check_at": start + timedelta(seconds=args.interval * i / args.sites),
                "created_at": now, "updated_at": now,
            }
            for i in range(args.sites)
        ]  # fmt: skip
        columns = list(sites[0])
        insert = sa.text(
            f"INSERT INTO sites ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        )
        for offset in range(0, len(sites), 2000):
            connection.execute(insert, sites[offset : offset + 2000])
        if receiver_port is not None:
            site_ids = connection.execute(sa.text("SELECT id FROM sites ORDER BY id")).scalars().all()
            channels = [
                {
                    "owner_id": owner, "name": f"hook {site_id}", "url": f"http://127.0.0.1:{receiver_port}/hook/{site_id}",
                    "kind": "webhook", "events": '["site.down", "site.up"]', "all_sites": False,
                    "min_severity": "high", "remind_every_min": 0, "enabled": True, "language": "en",
                    "secret": "bench-secret", "created_at": now, "updated_at": now,
                }
                for site_id in site_ids
            ]  # fmt: skip
            columns = list(channels[0])
            insert = sa.text(
                f"INSERT INTO channels ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
            )
            for offset in range(0, len(channels), 2000):
                connection.execute(insert, channels[offset : offset + 2000])
            connection.execute(
                sa.text(
                    "INSERT INTO channel_sites (channel_id, site_id) SELECT id, CAST(SUBSTRING(name, 6) AS UNSIGNED) FROM channels"
                )
            )
    engine.dispose()
    return start.replace(tzinfo=UTC)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p(values: list[float], q: float) -> float | None:
    return round(sorted(values)[int(q * (len(values) - 1))], 3) if values else None


def _arrival(url: str, switch: datetime) -> dict:
    """The outbox as the downs arrived: how many, how fast they were sent, when the last one was."""
    import sqlalchemy as sa

    naive = switch.replace(tzinfo=None)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        total, sent, first_created, first_sent, last_sent, retried, wait_max = connection.execute(
            sa.text(
                "SELECT COUNT(*), SUM(status = 'sent'), MIN(created_at), MIN(sent_at), MAX(sent_at), "
                "SUM(attempts > 1), MAX(TIMESTAMPDIFF(MICROSECOND, created_at, sent_at)) / 1e6 "
                "FROM notifications WHERE event = 'site.down'"
            )
        ).one()
    engine.dispose()
    sent = int(sent or 0)
    span = (last_sent - first_sent).total_seconds() if sent > 1 else None
    return {
        "notifications": total,
        "sent": sent,
        "retried": int(retried or 0),
        "deliveries_per_s": round((sent - 1) / span, 1) if span else None,
        "longest_wait_s": round(float(wait_max), 2) if wait_max is not None else None,
        "first_queued_s_after_switch": round((first_created - naive).total_seconds(), 1)
        if first_created
        else None,
        "drained_s_after_switch": round((last_sent - naive).total_seconds(), 1)
        if sent == total and sent
        else None,
    }


def _burst(url: str, timeout_s: float) -> tuple[datetime, float]:
    """Put every notification back to pending at once (a backlog of N), wait until they are all sent
    again; returns when it started and how long it took."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        began = datetime.now(UTC)
        connection.execute(
            sa.text(
                "UPDATE notifications SET status = 'pending', sent_at = NULL, attempts = 0, next_attempt_at = :now"
            ),
            {"now": began.replace(tzinfo=None)},
        )
    give_up = time.monotonic() + timeout_s
    with engine.connect() as connection:
        while time.monotonic() < give_up:
            if not connection.scalar(sa.text("SELECT COUNT(*) FROM notifications WHERE status = 'pending'")):
                break
            time.sleep(0.5)
            connection.rollback()
        last = connection.scalar(sa.text("SELECT MAX(sent_at) FROM notifications"))
    engine.dispose()
    return began, (last - began.replace(tzinfo=None)).total_seconds()


def run(args, alerts: bool, measure_s: float | None = None) -> dict:
    import sqlalchemy as sa

    workdir = tempfile.mkdtemp(prefix="cloudeye-bench-alerts-")
    flag = f"{workdir}/down"
    site_server, site_port = start("site", flag)
    receiver, receiver_port = start("receiver", flag) if alerts else (None, None)
    env = {
        **os.environ,
        "CLOUDEYE_ENV": "testing",
        "DATABASE_URL": f"{args.mysql}/{args.db}?charset=utf8mb4",
        "REDIS_URL": args.redis,
        "DATA_DIR": f"{workdir}/data",
        "LOG_DIR": f"{workdir}/log",
        "LOG_LEVEL": "info",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "FLASK_APP": "cloudeye.py",
        "SYNC_FINDINGS_REFRESH_S": "86400",
    }
    try:
        start_at = _prepare(args, env, site_port, receiver_port)
        worker = subprocess.Popen(
            [sys.executable, "sync_main.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(max(0.0, (start_at - datetime.now(UTC)).total_seconds()) + args.warmup)
            switch = datetime.now(UTC)
            Path(flag).touch()  # every site answers 503 from now on
            cpu0 = _cpu_seconds(worker.pid)
            time.sleep(args.after)
            burst = arrival = None
            if alerts:
                arrival = _arrival(env["DATABASE_URL"], switch)
                burst = _burst(env["DATABASE_URL"], args.after)
            elif measure_s:
                time.sleep(max(0.0, measure_s - args.after))
            measured = (datetime.now(UTC) - switch).total_seconds()
            cpu = _cpu_seconds(worker.pid) - cpu0
        finally:
            worker.terminate()
            worker.wait(60)
    finally:
        site_server.terminate()
        if receiver is not None:
            receiver.terminate()

    engine = sa.create_engine(env["DATABASE_URL"])
    naive = switch.replace(tzinfo=None)
    with engine.connect() as connection:
        late = [
            (checked - due).total_seconds()
            for due, checked in connection.execute(
                sa.text("SELECT due_at, checked_at FROM usability_checks WHERE due_at >= :switch"),
                {"switch": naive},
            )
        ]
        down = connection.scalar(sa.text("SELECT COUNT(*) FROM sites WHERE state = 'down'"))
        result = {
            "alerts": alerts,
            "checks_after_switch": len(late),
            "sites_down": down,
            "lateness_s_p50": round(statistics.median(late), 3) if late else None,
            "lateness_s_p95": _p(late, 0.95),
            "lateness_s_max": round(max(late), 3) if late else None,
            "measured_s": round(measured, 1),
            "worker_cpu_percent": round(100 * cpu / measured, 1),
        }
        if alerts:
            result.update(arrival)
            result.update(
                burst_of=arrival["notifications"],
                burst_drained_s=round(burst[1], 1),
                burst_deliveries_per_s=round(arrival["notifications"] / burst[1], 1)
                if burst[1] > 0
                else None,
            )
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--flag", help=argparse.SUPPRESS)
    parser.add_argument("--sites", type=int, default=10000)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=75, help="seconds of all-up before the switch")
    parser.add_argument("--after", type=int, default=120, help="seconds measured after the switch")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--db", default="cloudeye_bench_alerts")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.flag)
        return
    with_alerts = run(args, alerts=True)
    print("with alerts:   ", with_alerts)
    baseline = run(args, alerts=False, measure_s=with_alerts["measured_s"])  # as long a window
    print("without alerts:", baseline)
    if baseline["lateness_s_p95"] and with_alerts["lateness_s_p95"] is not None:
        print(
            f"p95 lateness with alerts / without: {with_alerts['lateness_s_p95'] / baseline['lateness_s_p95']:.2f}"
        )


if __name__ == "__main__":
    main()
