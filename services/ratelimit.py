"""Fixed-window call limits kept in the cache (Redis, or the in-process cache without it)."""

import logging

from services.cache import cache
from services.errors import TooManyRequests

log = logging.getLogger(__name__)


def count_call(name: str, who, limit: int, window_s: int, message: str) -> None:
    """Count one call of `who` against `limit` per `window_s`; TooManyRequests (429, Retry-After) beyond.

    A cache outage lets calls through (logged): a limiter must not take the feature down with it."""
    key = cache.key("rate", name, who)
    try:
        calls = cache.store.incr(key)
        retry_after = cache.store.ttl(key)
        if retry_after is None or retry_after < 0:  # the first call of a window (or a lost expiry)
            cache.store.expire(key, window_s)
            retry_after = window_s
    except Exception as exc:
        log.warning("%s rate limiter unavailable: %s", name, exc)
        return
    if calls > limit:
        raise TooManyRequests(message, retry_after=max(1, retry_after))
