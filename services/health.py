"""Health of the things a process depends on: database, Redis, schema version."""

import contextlib
import functools
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import current_app

from services.cache import cache
from services.extensions import db

log = logging.getLogger(__name__)


def database_ok() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
        return True
    except Exception as exc:
        log.warning("health: database unreachable: %s", str(exc).splitlines()[0][:200])
        with contextlib.suppress(Exception):
            db.session.rollback()
        return False


def redis_state() -> str:
    """'ok', 'down', or 'disabled' when no REDIS_URL is configured."""
    if not cache.is_redis:
        return "disabled"
    return "ok" if cache.ping() else "down"


@functools.cache
def _script_heads(migrations_dir: str) -> frozenset:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", migrations_dir)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def migrations_at_head() -> bool:
    migrations_dir = current_app.extensions["migrate"].directory
    try:
        # The version table read directly: alembic's MigrationContext logs its dialect choice at INFO on
        # every call, which would be one log line per healthcheck.
        with db.engine.connect() as connection:
            current = frozenset(
                connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
            )
    except Exception:
        return False
    return current == _script_heads(migrations_dir)


@dataclass(frozen=True)
class Health:
    """The state of what a process depends on, and the one verdict drawn from it."""

    db: str  # ok | down
    redis: str  # ok | down | disabled
    migrations: str | None = None  # ok | pending; None when not asked

    @property
    def status(self) -> str:
        """down: cannot serve (no database, or a schema behind the code); degraded: serves without Redis,
        which only caches and coordinates (so a Redis outage must not take every api replica out of the
        load balancer); ok otherwise."""
        if self.db != "ok" or self.migrations not in (None, "ok"):
            return "down"
        return "degraded" if self.redis == "down" else "ok"

    @property
    def serving(self) -> bool:
        return self.status != "down"


def assess(with_migrations: bool = False) -> Health:
    db_state = "ok" if database_ok() else "down"
    migrations = None
    if with_migrations:
        migrations = "ok" if db_state == "ok" and migrations_at_head() else "pending"
    return Health(db=db_state, redis=redis_state(), migrations=migrations)
