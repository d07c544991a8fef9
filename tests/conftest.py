"""Fixtures: one schema per session on a real MariaDB (or SQLite), a clean slate per test.

The schema is built once with the real migrations (`flask db upgrade`); after each test every table is
emptied and the test Redis database flushed, so no test depends on another's leftovers.
"""

import os
import tempfile

import pytest
import redis
import sqlalchemy as sa

from tests import settings
from tests.factories import Caller, create_user


def _create_database(name: str) -> str:
    engine = sa.create_engine(settings.MYSQL_SERVER + "/?charset=utf8mb4")
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        connection.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    engine.dispose()
    return settings.database_url(name)


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="cloudeye-test-") as path:
        yield path


@pytest.fixture(scope="session")
def database_url(workdir):
    if settings.BACKEND == "sqlite":
        return f"sqlite:///{workdir}/cloudeye-test.db"
    return _create_database(settings.TEST_DB)


@pytest.fixture(scope="session")
def test_env(workdir, database_url):
    """The environment a test process (or a subprocess it starts) runs the app with."""
    return {
        "CLOUDEYE_ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "DATA_DIR": os.path.join(workdir, "data"),
        "LOG_DIR": os.path.join(workdir, "log"),
        "LOG_LEVEL": "warning",
        "SECRET_KEY": "test-secret-key-not-for-production",
    }


@pytest.fixture(scope="session")
def app(test_env):
    from flask_migrate import upgrade

    from api import create_app
    from services.config import Config

    saved = {key: os.environ.get(key) for key in test_env}
    os.environ.update(test_env)
    try:
        application = create_app(Config.from_env())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with application.app_context():
        upgrade()
    yield application


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty every table and flush the test Redis db after each test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from services.cache import cache
    from services.extensions import db

    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        cache.store.flushdb()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app, ctx):
    return app.test_client()


@pytest.fixture
def redis_client():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (CLOUDEYE_TEST_REDIS is empty: make test-fast)")
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def admin(client):
    return Caller(client, create_user("admin"))


@pytest.fixture
def operator(client):
    return Caller(client, create_user("operator"))


@pytest.fixture
def other_operator(client):
    return Caller(client, create_user("operator"))


@pytest.fixture
def viewer(client):
    return Caller(client, create_user("viewer"))
