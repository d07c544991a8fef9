"""Cache and coordination: Redis when REDIS_URL is set, otherwise an in-process stand-in.

The in-process stand-in serves `make run` (one gunicorn worker process); with several processes set
REDIS_URL so that invalidation reaches every one of them.
"""

import json
import logging
import threading
import time

import redis
from flask import current_app

log = logging.getLogger(__name__)


class LocalStore:
    """Just enough of the Redis API for caching and rate limiting inside one process."""

    def __init__(self):
        self._data: dict[str, tuple[float | None, object]] = {}
        self._lock = threading.Lock()

    def _live(self, key):
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires is not None and expires < time.monotonic():
            del self._data[key]
            return None
        return value

    def get(self, key):
        with self._lock:
            return self._live(key)

    def set(self, key, value, ex=None):
        with self._lock:
            self._data[key] = (time.monotonic() + ex if ex else None, value)
        return True

    def delete(self, *keys):
        with self._lock:
            return sum(1 for key in keys if self._data.pop(key, None) is not None)

    def incr(self, key):
        with self._lock:
            value = int(self._live(key) or 0) + 1
            expires = self._data.get(key, (None, None))[0]
            self._data[key] = (expires, value)
            return value

    def expire(self, key, seconds):
        with self._lock:
            if key in self._data:
                self._data[key] = (time.monotonic() + seconds, self._data[key][1])
        return True

    def ttl(self, key):
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] is None:
                return -1
            return max(0, int(item[0] - time.monotonic()))

    def ping(self):
        return True

    def flushdb(self):
        with self._lock:
            self._data.clear()


class Cache:
    """JSON values with a TTL. Cache failures never fail a request: they fall back to the database.

    Bound per application (like the other extensions): `init_app` puts the backend in `app.extensions`,
    and every call resolves the current app's backend, so two apps in one process never share a store.
    """

    prefix = "cloudeye:"

    def init_app(self, app):
        url = app.config.get("REDIS_URL")
        if url:
            store = redis.Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
            )
        else:
            store = LocalStore()
        app.extensions["cloudeye_cache"] = _Backend(
            store, is_redis=bool(url), ttl=app.config.get("CACHE_TTL_S", 60)
        )

    @property
    def _backend(self) -> "_Backend":
        return current_app.extensions["cloudeye_cache"]

    @property
    def store(self):
        return self._backend.store

    @property
    def is_redis(self) -> bool:
        return self._backend.is_redis

    def key(self, *parts) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def get_json(self, key):
        try:
            raw = self.store.get(key)
        except redis.RedisError as exc:
            log.warning("cache read failed, using the database: %s", exc)
            return None
        if raw is None:
            return None
        return json.loads(raw)

    def set_json(self, key, value, ttl: int | None = None):
        try:
            self.store.set(key, json.dumps(value, default=str), ex=ttl or self._backend.ttl)
        except redis.RedisError as exc:
            log.warning("cache write failed: %s", exc)

    def delete(self, *keys):
        if not keys:
            return
        try:
            self.store.delete(*keys)
        except redis.RedisError as exc:
            # A failed invalidation could leave a stale value: say so loudly. The TTL bounds it.
            log.error("cache invalidation failed for %s: %s", keys, exc)

    def ping(self) -> bool:
        try:
            return bool(self.store.ping())
        except redis.RedisError:
            return False


class _Backend:
    def __init__(self, store, is_redis: bool, ttl: int):
        self.store = store
        self.is_redis = is_redis
        self.ttl = ttl


cache = Cache()
