"""The worker's healthcheck. Heartbeats themselves (a Redis key with a TTL when REDIS_URL is set, else a
`worker_heartbeats` row, with the worker's location) are written by `services.locations.beat`.

`python sync_main.py --healthcheck` calls `is_fresh` without building the app (no log file per call):
it is true while a worker of this host (or exactly SYNC_WORKER_ID when set) has beaten within
SYNC_HEARTBEAT_TTL_S. A worker that stops cleanly removes its heartbeat at once.
"""

import os
import socket
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa

from services.models import WorkerHeartbeat

PREFIX = "cloudeye:sync:heartbeat:"  # cache.key("sync", "heartbeat", worker_id)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_fresh(config, worker_id: str | None = None) -> bool:
    """Whether worker `worker_id` (default: any worker of this host) has a live heartbeat."""
    host_prefix = f"{socket.gethostname()}:"
    if config.REDIS_URL:
        client = redis.Redis.from_url(config.REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        try:
            if worker_id:
                return bool(client.exists(PREFIX + worker_id))
            return any(
                True for _ in client.scan_iter(match=_escape_glob(PREFIX + host_prefix) + "*", count=500)
            )
        finally:
            client.close()
    engine = sa.create_engine(config.SQLALCHEMY_DATABASE_URI, poolclass=sa.pool.NullPool)
    try:
        table = WorkerHeartbeat.__table__
        cutoff = datetime.now(UTC) - timedelta(seconds=config.SYNC_HEARTBEAT_TTL_S)
        # A worker that stopped cleanly keeps its row (stopped_at set, services.locations.clear).
        query = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.beat_at >= cutoff, table.c.stopped_at.is_(None))
        )
        if worker_id:
            query = query.where(table.c.worker_id == worker_id)
        else:
            query = query.where(table.c.worker_id.startswith(host_prefix, autoescape=True))
        with engine.connect() as connection:
            return bool(connection.scalar(query))
    finally:
        engine.dispose()


def _escape_glob(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
