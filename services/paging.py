"""One page of a query, with its total: {items, total, total_is_estimate, page, per_page} (API lists and
console tables).

Counting is exact up to a size and bounded above it (docs/domain.md, "Lists"): the total is counted with
`COUNT(*)` over the query cut at `COUNT_EXACT_UP_TO` rows (or at the end of the requested page, when that
is further), so a count never reads more rows than that, whatever the table's size. When more rows match,
`total` is that bound and `total_is_estimate` is true: "more than `total`" (the console shows "N+").
An exact COUNT of a million findings cost 86 ms for a page that cost 3 ms (docs/benchmarks.md).

The count comes first, and it also chooses how the page is read. When few rows match (an exact count),
their ids are read off whichever index serves the filters and the page is sorted from those rows alone:
reading a sort index in order until a page of rare matches turns up can walk most of a big table (a
filter on site, scanner and status of /bugs read 100,000 index entries for 20 rows). When many match,
the sort index read in order finds a page quickly.
"""

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, UnaryExpression

from services.extensions import db

COUNT_EXACT_UP_TO = 1000


def envelope(items: list, total: int, page: int, per_page: int, estimate: bool = False) -> dict:
    return {"items": items, "total": total, "total_is_estimate": estimate, "page": page, "per_page": per_page}


# A list filtered on at most this many values of a column may be read value by value (`split`).
SPLIT_MAX_VALUES = 200


class Split(NamedTuple):
    """How a big list may be read value by value: its criterion `column IN (values)`, and the index on
    (column, the list's order) each value's read goes by. The index is named because MySQL may not pick
    it: for one site's 20 newest findings with a status it walked the table-wide `last_seen_at` index
    (an estimate of 955 rows, seconds on a big site), not the site's own."""

    column: sa.ColumnElement
    values: list
    index: str | None = None


def paginate(
    query: sa.Select,
    args: dict,
    count_query: sa.Select | None = None,
    split: Split | None = None,
    order_index: str | None = None,
) -> dict:
    """Run `query` for one page. `count_query` may be a cheaper equivalent for the total. `order_index`:
    the index that gives the query's order, which a big list's page is read through (MySQL took an index
    of the filters instead and sorted every match: 130 ms against 18 for a site's 10,000 fixed zap
    findings in severity order). `split`: when
    the query has the criterion `column IN (values)` and an index on (column, the query's order) serves
    each value's first rows, a big list is read as each value's first
    `offset + per_page` rows, merged (a few index entries per value, instead of the whole table's order
    index walked until enough matching rows turn up: 0.55 % of 10 million checks for an operator's 55
    sites; the open findings of 1M sorted by severity, all of them below 500,000 others)."""
    page, per_page = args["page"], args["per_page"]
    offset = (page - 1) * per_page
    bound = count_bound(offset, per_page)
    counted = count_query if count_query is not None else query.order_by(None)
    # Only a constant per row: the database may count off an index without reading the rows (with the
    # entity's columns the cut subquery was materialised row by row: 14 ms against 1 for 1,001 ids).
    counted = counted.with_only_columns(sa.literal_column("1"), maintain_column_froms=True)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(counted.limit(bound + 1).subquery()))
    if total > bound:
        key = _single_key(query)
        if split is not None and key is not None and len(split.values) <= SPLIT_MAX_VALUES:
            page_ids = _split_page_ids(query, key, split, per_page, offset).subquery("page")
            items = db.session.scalars(query.where(key.in_(sa.select(page_ids.c.k)))).all()
            return envelope(items, bound, page, per_page, estimate=True)
        items = _page_by_ids(query, key, per_page, offset, order_index)
        return envelope(items, bound, page, per_page, estimate=True)
    if offset >= total:
        return envelope([], total, page, per_page)
    key = _single_key(query)
    if key is None:
        return envelope(db.session.scalars(query.limit(per_page).offset(offset)).all(), total, page, per_page)
    ids = db.session.scalars(query.order_by(None).with_only_columns(key).limit(bound + 1)).all()
    items = db.session.scalars(query.where(key.in_(ids)).limit(per_page).offset(offset)).all()
    return envelope(items, total, page, per_page)


def _page_by_ids(query: sa.Select, key, per_page: int, offset: int, index: str | None = None) -> list:
    """The page's ids first, then their rows by primary key, in one statement (`id IN (SELECT id FROM
    (the page's ids) AS page)`: MySQL reads the 20 ids, then each row by its key). The ids come off an
    index alone when it holds the filters' columns; reading whole rows instead fetched every row the
    scan passed, skipped or filtered (MariaDB does not check an index's columns before fetching the row
    in a descending scan): 565 ms of SQL for page 3 of a 100,000-finding site's open findings; 47 ms for
    the whole request with the ids read first. (As two statements, the second round trip cost as much as
    the rest of the SQL of an admin's page.)"""
    if key is None:
        return db.session.scalars(query.limit(per_page).offset(offset)).all()
    page = _by_index(query.with_only_columns(key), index).limit(per_page).offset(offset).subquery("page")
    return db.session.scalars(query.where(key.in_(sa.select(page.c[0])))).all()


def _split_page_ids(query: sa.Select, key, split: Split, per_page: int, offset: int) -> sa.Select:
    """The page's ids (column `k`), read as each value's first `offset + per_page` rows (key and sort
    columns only) and merged by the database, in the statement that reads the page's rows (a merge in
    Python received 55 x 20 ids and sent them back in an IN list).

    The parts share one narrowed, cut statement and differ by a criterion added to it (a shallow copy):
    copying the query per value with its `column IN (values)` swapped for `column = value` cost 0.4 ms
    of Python each, 20 ms of an operator's 30 ms request over 55 sites. (With the equality beside the
    list instead, the optimizer looked at every site of the list in every part: 55 x 55 index dives.)"""
    order = []  # (column, descending) of the query's ORDER BY
    for clause in query._order_by_clauses:  # SQLAlchemy has no public reader of a select's order
        descending = isinstance(clause, UnaryExpression) and clause.modifier is operators.desc_op
        ascending = isinstance(clause, UnaryExpression) and clause.modifier is operators.asc_op
        order.append((clause.element if descending or ascending else clause, descending))
    columns = [key.label("k"), *(column.label(f"o{n}") for n, (column, _) in enumerate(order))]
    target = split.column.expression if hasattr(split.column, "expression") else split.column
    # The query's criteria but `column IN (values)` (again no public reader).
    criteria = [c for c in query._where_criteria if not _is_in_list_of(c, target)]
    first_rows = (
        sa.select(*columns)
        .select_from(*query.get_final_froms())
        .where(*criteria)
        .order_by(*query._order_by_clauses)
        .limit(offset + per_page)
    )
    first_rows = _by_index(first_rows, split.index)
    merged = union_of_cut([first_rows.where(target == value) for value in split.values])
    sort = [
        merged.c[f"o{n}"].desc() if desc else merged.c[f"o{n}"].asc() for n, (_, desc) in enumerate(order)
    ]
    return sa.select(merged.c.k).order_by(*sort).limit(per_page).offset(offset)


def union_of_cut(parts) -> sa.Subquery:
    """UNION ALL of selects that each have their own ORDER BY and LIMIT, as a subquery `merged`. MySQL
    takes each part in parentheses; SQLite only as a subquery of its own."""
    if db.session.get_bind().dialect.name == "sqlite":
        parts = [sa.select(*part.subquery().c) for part in parts]
    return sa.union_all(*parts).subquery("merged")


def count_bound(offset: int, per_page: int) -> int:
    """How far a list counts: COUNT_EXACT_UP_TO, or the end of the requested page when that is further."""
    return max(COUNT_EXACT_UP_TO, offset + per_page)


def _by_index(query: sa.Select, index: str | None) -> sa.Select:
    """`query` told to read its table through `index` (MySQL; other databases choose alone)."""
    if index is None:
        return query
    table = query.get_final_froms()[0]
    return query.with_hint(table, f"FORCE INDEX ({index})", dialect_name="mysql")


def _is_in_list_of(criterion, column) -> bool:
    """Whether `criterion` is `column IN (...)`."""
    return (
        isinstance(criterion, BinaryExpression)
        and criterion.operator is operators.in_op
        and isinstance(criterion.left, sa.Column | sa.sql.elements.ColumnClause)
        and criterion.left.compare(column)
    )


def _single_key(query: sa.Select):
    """The primary key column of the entity `query` selects, if it has one column (else None)."""
    descriptions = query.column_descriptions
    entity = descriptions[0].get("entity") if len(descriptions) == 1 else None
    if entity is None:
        return None
    keys = sa.inspect(entity).primary_key
    return keys[0] if len(keys) == 1 else None
