"""Cache and coordination: Redis when REDIS_URL is set, otherwise an in-process stand-in.

The in-process stand-in serves `make run` (one gunicorn worker process); with several processes set
REDIS_URL so that invalidation reaches every one of them.
"""

import gzip
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

    def mget(self, keys):
        with self._lock:
            return [self._live(key) for key in keys]

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

    def get_json_many(self, keys: list[str]) -> list:
        """`get_json` of each key, in one round trip (None for each on a cache error)."""
        if not keys:
            return []
        try:
            raws = self.store.mget(keys)
        except redis.RedisError as exc:
            log.warning("cache read failed, using the database: %s", exc)
            return [None] * len(keys)
        return [None if raw is None else json.loads(raw) for raw in raws]

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

    # Versioned values: a reader that computed a value from the database while a write was being
    # committed must not store it for later readers. Each key has a version that every invalidation
    # bumps; a value is stored with the version read *before* the database was read, and served only
    # while that version is still current. (Delete-on-write alone loses that race: the slow reader
    # stores its stale value right after the writer deleted the key.)

    def get_versioned(self, key) -> tuple[object | None, int | None]:
        """(value, version): the value when one is stored for the current version, else None; the
        version to pass to `set_versioned` (None when the cache is unavailable: then store nothing).
        Read the version before reading the database the value comes from."""
        try:
            raw_version, raw = self.store.mget([self._version_key(key), key])
        except redis.RedisError as exc:
            log.warning("cache read failed, using the database: %s", exc)
            return None, None
        version = int(raw_version or 0)
        if raw is not None:
            entry = json.loads(raw)
            if isinstance(entry, dict) and entry.get("version") == version:
                return entry.get("value"), version
        return None, version

    def set_versioned(self, key, value, version: int | None, ttl: int | None = None):
        if version is not None:
            self.set_json(key, {"version": version, "value": value}, ttl)

    def invalidate(self, *keys):
        """Make the values of `keys` unservable, including ones computed before this call and
        stored after it. Call after the write has been committed."""
        if not keys:
            return
        version_ttl = max(86400, 10 * self._backend.ttl)  # outlives every value stored under a version
        try:
            store = self.store
            if self.is_redis:
                pipe = store.pipeline(transaction=False)
                for key in keys:
                    pipe.incr(self._version_key(key))
                    pipe.expire(self._version_key(key), version_ttl)
                pipe.delete(*keys)
                pipe.execute()
            else:
                for key in keys:
                    store.incr(self._version_key(key))
                    store.expire(self._version_key(key), version_ttl)
                store.delete(*keys)
        except redis.RedisError as exc:
            log.error("cache invalidation failed for %s: %s", keys, exc)

    @staticmethod
    def _version_key(key: str) -> str:
        return key + ":version"

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


class Memo:
    """A small per-process memo of what is derived from a cached value (rendered HTML, serialized JSON):
    keyed by whatever identifies that value (e.g. its `generated_at`), so a new value makes a new key and
    nothing needs invalidating; the oldest entries go past `size`."""

    @staticmethod
    def encoded(text: str) -> tuple[bytes, bytes]:
        """A text body as (UTF-8, gzip of it): compressed once, sent to every client that accepts gzip."""
        raw = text.encode("utf-8")
        return raw, gzip.compress(raw, compresslevel=6, mtime=0)

    def __init__(self, size: int = 128):
        self.size = size
        self._items: dict = {}
        self._lock = threading.Lock()

    def get_or_make(self, key, make):
        with self._lock:
            if key in self._items:
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
        return value
