"""Column types and helpers shared by every model."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (DATETIME(6) on MySQL), always returned timezone-aware."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# Long text: MEDIUMTEXT on MySQL (16 MB) so diffs and descriptions from scanners are not cut at 64 KB.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")
LongBlob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")
# MySQL needs an explicit BIGINT for autoincrement on big tables; SQLite wants INTEGER for rowid aliasing.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
