"""Helpers for API tests that look at what reached the database."""

import contextlib

import sqlalchemy as sa

from services.extensions import db


@contextlib.contextmanager
def statements():
    """Collect the SQL statements sent while the block runs."""
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
