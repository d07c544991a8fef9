"""The core application: configuration, logging, database, cache and CLI — no HTTP routes.

The API adds its blueprints on top (`api.create_app`); the sync worker and the migrate job use this
directly, so every process shares one way of being configured.
"""

from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from services.cache import cache
from services.config import Config
from services.extensions import db, migrate
from services.log import init_logging

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_core_app(config: Config | None = None, role: str = "cli") -> Flask:
    config = config or Config.from_env()
    app = Flask("cloudeye", static_folder=None)
    app.config.from_mapping(config.as_dict())
    app.config["CLOUDEYE_ROLE"] = role
    Path(config.DATA_DIR).mkdir(parents=True, exist_ok=True)
    init_logging(config, role)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, compare_type=True, render_as_batch=True)
    cache.init_app(app)
    with app.app_context():
        _tune_engine(db.engine)

    import services.models  # noqa: F401 - registers every table on the metadata
    from services import cli

    cli.init_app(app)
    return app


def _tune_engine(engine: sa.Engine) -> None:
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # api and sync read while the other writes
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    elif engine.dialect.name == "mysql":
        # READ COMMITTED: no gap locks between the API's imports and the worker's claims.
        engine.update_execution_options(isolation_level="READ COMMITTED")
