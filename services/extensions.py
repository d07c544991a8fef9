"""Extensions, created unbound; `init_app` binds them in the factory."""

import contextlib
import logging

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

log = logging.getLogger(__name__)

# Stable constraint names so migrations behave the same on MySQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _SQLAlchemy(SQLAlchemy):
    def _teardown_session(self, exc: BaseException | None) -> None:
        """Close the request's session; a connection lost by then is dropped, not raised.

        Closing rolls back the open transaction. If the database went away after the view answered
        (a restart), that rollback fails, and an exception here would replace the finished answer with
        the server's own 500 page. Nothing is left to undo on a dead connection: it is invalidated (the
        pool opens a new one later) and the session is discarded all the same.
        """
        try:
            self.session.remove()
        except sa.exc.DBAPIError as error:
            log.warning(
                "database connection lost while closing the request's session: %s",
                str(error).splitlines()[0][:300],
            )
            with contextlib.suppress(Exception):
                self.session.invalidate()
            self.session.registry.clear()


db = _SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
