"""Health of the things a process depends on: database, Redis, schema version."""

import contextlib
import functools
import logging

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
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
        with db.engine.connect() as connection:
            current = frozenset(MigrationContext.configure(connection).get_current_heads())
    except Exception:
        return False
    return current == _script_heads(migrations_dir)
