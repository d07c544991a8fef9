"""One page of a query, with its total: {items, total, page, per_page} (API lists and console tables)."""

import sqlalchemy as sa

from services.extensions import db


def paginate(query: sa.Select, args: dict, count_query: sa.Select | None = None) -> dict:
    """Run `query` for one page. `count_query` may be a cheaper equivalent for the total."""
    page, per_page = args["page"], args["per_page"]
    offset = (page - 1) * per_page
    items = db.session.scalars(query.limit(per_page).offset(offset)).all()
    if len(items) < per_page and (items or page == 1):
        # A short page is the last one: the total is known without a COUNT (which on a big table costs
        # far more than the page itself). Past the end (an empty page > 1) it still has to be counted.
        total = offset + len(items)
    else:
        counted = count_query if count_query is not None else query.order_by(None)
        total = db.session.scalar(sa.select(sa.func.count()).select_from(counted.subquery()))
    return {"items": items, "total": total, "page": page, "per_page": per_page}
