"""`sync_main.py` with counters, for bench/bench_probes.py: the same worker, plus a tally of the SQL
statements it sends (by kind and by thread) and of its Redis round trips, written every second to the
JSON file named by BENCH_STATS_FILE (so the bench takes the difference over its measuring window).

    BENCH_STATS_FILE=/tmp/stats.json python bench/sync_counted.py

Nothing of the worker changes: the counters are SQLAlchemy's `before_cursor_execute` event on every
engine and a wrapper around redis-py's `Connection.send_packed_command` (one call per round trip: a
pipeline is one).
"""

import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path

# BENCH_CODE_ROOT: another checkout of cloudeye to run (the bench's baseline, a `git archive` of an older
# revision); default this one.
ROOT = Path(os.environ.get("BENCH_CODE_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

_lock = threading.Lock()
_statements: Counter = Counter()  # (thread role, statement kind) -> count
_redis: Counter = Counter()  # thread role -> round trips


def _role() -> str:
    return _role_of(threading.current_thread().name)


def _role_of(name: str) -> str:
    """The worker's thread names are `probe_N`, `writer-N`, `follow-up-N`, `MainThread`, ...: the part
    before the number."""
    return name.rstrip("0123456789").rstrip("-_") or name


def _install() -> None:
    import redis.connection
    import sqlalchemy as sa

    @sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        kind = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        # PyMySQL sends an executemany of UPDATE/DELETE as one statement per row (INSERT as one).
        rows = len(parameters) if executemany and kind != "INSERT" and parameters else 1
        with _lock:
            _statements[(_role(), kind)] += rows

    for event in ("commit", "rollback"):

        @sa.event.listens_for(sa.engine.Engine, event)
        def _transaction(conn, _event=event.upper()):
            with _lock:
                _statements[(_role(), _event)] += 1

    original = redis.connection.Connection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        with _lock:
            _redis[_role()] += 1
        return original(self, command, check_health)

    redis.connection.Connection.send_packed_command = send_packed_command


def _dump(path: str) -> None:
    with _lock:
        data = {
            "statements": [[role, kind, count] for (role, kind), count in sorted(_statements.items())],
            "redis": dict(_redis),
        }
    # The OS thread ids of each role: the bench reads their CPU time in /proc/<pid>/task/<tid>/stat.
    data["threads"] = {str(t.native_id): _role_of(t.name) for t in threading.enumerate() if t.native_id}
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(data))
    os.replace(tmp, path)


def main() -> int:
    path = os.environ["BENCH_STATS_FILE"]
    _install()
    stop = threading.Event()

    def loop():
        while not stop.wait(1.0):
            _dump(path)

    threading.Thread(target=loop, name="bench-stats", daemon=True).start()
    import sync_main

    try:
        return sync_main.main([])
    finally:
        stop.set()
        _dump(path)


if __name__ == "__main__":
    sys.exit(main())
