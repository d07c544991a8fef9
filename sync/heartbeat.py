"""The worker's heartbeat: a Redis key with a TTL when REDIS_URL is set, else a `worker_heartbeats` row.

`python sync_main.py --healthcheck` calls `is_fresh` without building the app (no log file per call):
it is true while a worker of this host (or exactly SYNC_WORKER_ID when set) has beaten within
SYNC_HEARTBEAT_TTL_S. A worker that stops cleanly removes its heartbeat at once.
"""

import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa

from services.cache import cache
from services.extensions import db
from services.models import WorkerHeartbeat

log = logging.getLogger(__name__)
PREFIX = "cloudeye:sync:heartbeat:"  # cache.key("sync", "heartbeat", worker_id)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(worker_id: str, ttl_s: int, info: dict) -> None:
    now = datetime.now(UTC)
    info = {**info, "worker_id": worker_id, "beat_at": now.isoformat()}
    if cache.is_redis:
        cache.store.set(cache.key("sync", "heartbeat", worker_id), json.dumps(info), ex=max(1, ttl_s))
        return
    row = db.session.get(WorkerHeartbeat, worker_id)
    if row is None:
        row = WorkerHeartbeat(worker_id=worker_id)
        db.session.add(row)
    row.beat_at = now
    row.info = info
    db.session.commit()


def clear(worker_id: str) -> None:
    if cache.is_redis:
        cache.store.delete(cache.key("sync", "heartbeat", worker_id))
        return
    db.session.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))
    db.session.commit()


def prune(older_than: timedelta = timedelta(days=1)) -> int:
    """Remove heartbeat rows of workers long gone (each start has a new id). Commits."""
    cutoff = datetime.now(UTC) - older_than
    result = db.session.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < cutoff))
    db.session.commit()
    return result.rowcount or 0


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
        query = sa.select(sa.func.count()).select_from(table).where(table.c.beat_at >= cutoff)
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
