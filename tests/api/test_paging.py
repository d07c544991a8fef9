"""The paging envelope: exact totals on every page, without a COUNT where the page already tells."""

import pytest
import sqlalchemy as sa

from tests.factories import create_site


@pytest.fixture
def sites_25(operator):
    for number in range(25):
        create_site(operator.user, name=f"site-{number:02d}")
    return operator


@pytest.mark.parametrize(
    ("page", "count", "total"),
    [(1, 10, 25), (2, 10, 25), (3, 5, 25), (4, 0, 25), (99, 0, 25)],
)
def test_every_page_reports_the_exact_total(sites_25, page, count, total):
    body = sites_25.get(f"/sites?per_page=10&page={page}").get_json()
    assert (len(body["items"]), body["total"], body["page"], body["per_page"]) == (count, total, page, 10)


def test_a_short_page_needs_no_count_query(sites_25, app):
    from services.extensions import db

    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert sites_25.get("/sites?per_page=10&page=3").get_json()["total"] == 25
        short = [s for s in statements if "count(" in s.lower()]
        statements.clear()
        assert sites_25.get("/sites?per_page=10&page=2").get_json()["total"] == 25
        full = [s for s in statements if "count(" in s.lower()]
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert short == [] and len(full) == 1
