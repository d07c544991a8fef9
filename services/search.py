"""Free-text filters (`q=`) of the lists."""

import sqlalchemy as sa


def escape_like(text: str) -> str:
    r"""`text` as a literal inside a LIKE pattern with ESCAPE '\' (so % and _ match themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(columns, text: str) -> sa.ColumnElement:
    """Any of `columns` contains `text` (LIKE '%text%', the collation's case rules)."""
    pattern = f"%{escape_like(text)}%"
    return sa.or_(*(column.like(pattern, escape="\\") for column in columns))
