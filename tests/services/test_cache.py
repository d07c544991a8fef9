"""The cache's versioned values, on Redis and on the in-process stand-in."""

import pytest
from flask import Flask

from services.cache import cache
from tests import settings


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis")),
        "local",
    ]
)
def cache_app(request):
    app = Flask("cache-test")
    app.config.update(REDIS_URL=settings.REDIS_URL if request.param == "redis" else None, CACHE_TTL_S=60)
    cache.init_app(app)
    with app.app_context():
        yield app
        cache.store.flushdb()


def test_a_versioned_value_is_served_until_invalidated(cache_app):
    key = cache.key("test", "summary", 1)
    assert cache.get_versioned(key) == (None, 0)
    cache.set_versioned(key, {"state": "up"}, 0)
    assert cache.get_versioned(key) == ({"state": "up"}, 0)
    cache.invalidate(key)
    assert cache.get_versioned(key) == (None, 1)


def test_a_value_read_before_an_invalidation_is_never_served_after_it(cache_app):
    key = cache.key("test", "summary", 2)
    _, version = cache.get_versioned(key)  # a reader starts, reads the database...
    cache.invalidate(key)  # ...a write commits and invalidates...
    cache.set_versioned(key, {"state": "stale"}, version)  # ...and the reader stores what it read
    assert cache.get_versioned(key) == (None, version + 1)
    cache.set_versioned(key, {"state": "fresh"}, version + 1)
    assert cache.get_versioned(key) == ({"state": "fresh"}, version + 1)
