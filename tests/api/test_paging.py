"""The paging envelope: exact totals up to a bound, a flagged bound above it, one bounded count a page."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services import paging
from tests.api.helpers import statements
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


def test_one_bounded_count_per_page(sites_25, app):
    """Every page is counted once, with the count cut at the bound (never a COUNT of the whole table)."""

    with statements() as sent:
        assert sites_25.get("/sites?per_page=10&page=3").get_json()["total"] == 25
    counts = [s for s in sent if "count(" in s.lower()]
    assert len(counts) == 1 and "LIMIT" in counts[0].upper()


def test_a_small_result_is_sorted_from_its_own_rows(checks_1050):
    """Few matches (an exact count): the page is read among their ids, in the list's order."""
    caller, site = checks_1050
    body = caller.get(f"/usability/checks?site_id={site.id}&page=53&per_page=20").get_json()
    times = [item["checked_at"] for item in body["items"]]
    assert times == sorted(times, reverse=True) and len(times) == 10
    everything = [
        item["checked_at"]
        for page in range(1, 12)
        for item in caller.get(f"/usability/checks?site_id={site.id}&page={page}&per_page=100").get_json()[
            "items"
        ]
    ]
    assert len(everything) == len(set(everything)) == 1050 and everything == sorted(everything, reverse=True)


def test_totals_below_the_bound_are_exact(sites_25):
    body = sites_25.get("/sites?per_page=10&page=1").get_json()
    assert body["total_is_estimate"] is False


@pytest.fixture
def checks_1050(operator):
    """A site with 1,050 checks: more than paging.COUNT_EXACT_UP_TO (written in one INSERT)."""
    from services.extensions import db
    from services.models import UsabilityCheck

    site = create_site(operator.user)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    db.session.execute(
        sa.insert(UsabilityCheck),
        [
            {
                "site_id": site.id,
                "due_at": start + timedelta(minutes=n),
                "checked_at": start + timedelta(minutes=n),
                "status": "up",
                "http_status": 200,
                "response_ms": 10.0,
            }
            for n in range(1050)
        ],
    )
    db.session.commit()
    return operator, site


@pytest.mark.parametrize(
    ("page", "per_page", "count", "total", "estimate"),
    [
        (1, 20, 20, 1000, True),  # counted up to the bound: more than 1,000
        (50, 20, 20, 1000, True),  # the page ends at the bound, and more follow
        (51, 20, 20, 1020, True),  # past the bound: counted up to the end of the page
        (53, 20, 10, 1050, False),  # the last page: offset + items
        (11, 100, 50, 1050, False),
        (12, 100, 0, 1050, False),  # past the end: counted (the bound is the end of the page)
    ],
)
def test_big_lists_count_up_to_a_bound_and_say_so(checks_1050, page, per_page, count, total, estimate):
    caller, site = checks_1050
    assert paging.COUNT_EXACT_UP_TO == 1000
    body = caller.get(f"/usability/checks?site_id={site.id}&page={page}&per_page={per_page}").get_json()
    assert (len(body["items"]), body["total"], body["total_is_estimate"]) == (count, total, estimate)


def test_the_bound_moves_with_the_setting(sites_25, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 12)
    first = sites_25.get("/sites?per_page=5&page=1").get_json()
    assert (first["total"], first["total_is_estimate"]) == (12, True)
    # A page that ends beyond the bound counts up to its own end.
    fourth = sites_25.get("/sites?per_page=5&page=4").get_json()
    assert (fourth["total"], fourth["total_is_estimate"], len(fourth["items"])) == (20, True, 5)
    # The last page needs no count: exact.
    fifth = sites_25.get("/sites?per_page=5&page=5").get_json()
    assert (fifth["total"], fifth["total_is_estimate"], len(fifth["items"])) == (25, False, 5)


def test_an_operators_big_list_read_site_by_site_is_the_same_list(operator, other_operator, monkeypatch):
    """Over the bound, an operator's checks of several sites are each site's first rows, merged: the
    pages are exactly those of the one ordered query."""
    from services.extensions import db
    from services.models import UsabilityCheck
    from services.usability import list_checks

    mine = [create_site(operator.user) for _ in range(3)]
    theirs = create_site(other_operator.user)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(120):
        site = (mine + [theirs])[n % 4 if n % 7 else 0]
        moment = start + timedelta(minutes=(n * 37) % 500)  # interleaved, with equal times
        rows.append({"site_id": site.id, "due_at": start + timedelta(minutes=n), "checked_at": moment,
                     "status": "up" if n % 5 else "down", "http_status": 200, "response_ms": 1.0})  # fmt: skip
    db.session.execute(sa.insert(UsabilityCheck), rows)
    db.session.commit()
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 10)
    for query in ("", "&status=up"):
        expected = [
            c.id for c in db.session.scalars(list_checks(operator.user, status="up" if query else None))
        ]
        got = []
        for page in range(1, 20):
            body = operator.get(f"/usability/checks?per_page=7&page={page}{query}").get_json()
            got += [item["id"] for item in body["items"]]
        assert got == expected and len(expected) > 40
        assert body["total_is_estimate"] is False  # counted to the end of the last page


def _findings(sites, count):
    """`count` findings over `sites`, their severities, statuses and times interleaved, with ties, and
    statuses that follow severity (as in real triage: walking one order for one status skips others)."""
    from services.extensions import db
    from services.models import SEVERITY_RANK, Finding

    start = datetime(2026, 1, 1, tzinfo=UTC)
    severities = ["critical", "high", "medium", "low", "info"]
    statuses = {
        "critical": "fixed",
        "high": "confirmed",
        "medium": "open",
        "low": "open",
        "info": "accepted_risk",
    }
    rows = []
    for n in range(count):
        severity = severities[(n * 7) % 5]
        rows.append({"site_id": sites[n % len(sites)].id, "scanner": "s", "dedup_key": f"k{n}", "rule_id": "r",
                     "title": "t", "severity": severity, "severity_rank": SEVERITY_RANK[severity],
                     "status": statuses[severity] if n % 11 else "false_positive", "location": "",
                     "first_seen_at": start + timedelta(hours=(n * 13) % 40),
                     "last_seen_at": start + timedelta(hours=(n * 7) % 30)})  # fmt: skip
    db.session.execute(sa.insert(Finding), rows)
    db.session.commit()


def _all_pages(caller, path, per_page=8):
    got, page = [], 1
    while True:
        body = caller.get(f"{path}&per_page={per_page}&page={page}").get_json()
        if not body["items"]:
            return got
        got += [item["id"] for item in body["items"]]
        page += 1


@pytest.mark.parametrize(
    ("sort", "filters"),
    [
        ("last_seen_at", ""),
        ("-first_seen_at", ""),
        ("-severity", ""),
        ("severity", ""),
        ("-severity", "&status=open&status=fixed"),
        ("-last_seen_at", "&status=false_positive"),
        ("-severity", "&severity=high&severity=medium"),
    ],
)
def test_an_operators_big_finding_list_read_site_by_site_is_the_same_list(
    operator, monkeypatch, sort, filters
):
    from services.extensions import db
    from services.findings import list_findings

    _findings([create_site(operator.user) for _ in range(3)], 90)
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 5)
    lists: dict[str, list[str]] = {}
    for part in filter(None, filters.split("&")):
        name, value = part.split("=")
        lists.setdefault(name, []).append(value)
    expected = [f.id for f in db.session.scalars(list_findings(operator.user, sort=sort, **lists))]
    assert _all_pages(operator, f"/bugs?sort={sort}{filters}") == expected and len(expected) > 8


@pytest.mark.parametrize("filters", ["&status=open", "&status=open&status=fixed&status=false_positive", ""])
@pytest.mark.parametrize("sort", ["-severity", "severity"])
def test_an_admins_status_filter_read_status_by_status_is_the_same_list(
    admin, operator, monkeypatch, sort, filters
):
    """Across sites, a status filter in severity order is each status's first rows, merged."""
    from services.extensions import db
    from services.findings import list_findings

    _findings([create_site(operator.user) for _ in range(2)], 90)
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 5)
    status = [part.split("=")[1] for part in filters.split("&") if part] or None
    expected = [f.id for f in db.session.scalars(list_findings(admin.user, sort=sort, status=status))]
    body = admin.get(f"/bugs?sort={sort}{filters}&per_page=8").get_json()
    assert body["total_is_estimate"] is True
    assert _all_pages(admin, f"/bugs?sort={sort}{filters}") == expected and len(expected) > 8


def test_a_split_read_goes_by_the_named_index_on_mysql(operator, admin, monkeypatch):
    """MySQL is told which index reads each site or status (it walked a table-wide one instead); SQLite
    is not."""
    from services.extensions import db

    _findings([create_site(operator.user) for _ in range(2)], 30)
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 5)
    with statements() as sent:
        assert operator.get("/bugs?sort=-last_seen_at&per_page=5").status_code == 200
        assert admin.get("/bugs?status=open&status=fixed&per_page=5").status_code == 200
    expected = 1 if db.engine.dialect.name == "mysql" else 0
    for index in ("ix_findings_site_last_seen", "ix_findings_status_sev"):
        assert len([s for s in sent if f"FORCE INDEX ({index})" in s]) == expected, index


def test_one_sites_findings_never_go_by_a_table_wide_index_on_mysql(operator):
    """MySQL walked a table-wide order index for one site's filtered findings (seconds on a big site):
    every statement of a site's list tells it to ignore those; the answer is unchanged."""
    from services.extensions import db
    from services.findings import list_findings

    site = create_site(operator.user)
    _findings([site], 30)
    with statements() as sent:
        body = operator.get(f"/bugs?site_id={site.id}&status=open&per_page=5").get_json()
    expected = db.session.scalars(list_findings(operator.user, site_id=site.id, status=["open"])).all()
    assert body["total"] == len(expected) > 5
    assert [item["id"] for item in body["items"]] == [finding.id for finding in expected[:5]]
    read = [s for s in sent if "FROM findings" in s]
    hinted = [s for s in read if "IGNORE INDEX (ix_findings_severity, ix_findings_status_sev" in s]
    assert read and len(hinted) == (len(read) if db.engine.dialect.name == "mysql" else 0)


@pytest.mark.parametrize("sort", ["-severity", "last_seen_at", "-first_seen_at", "id"])
def test_one_sites_big_list_is_read_through_the_sites_order_index_on_mysql(operator, monkeypatch, sort):
    """A site's list with many matches reads its page off the site's index for the order (MySQL chose
    the filters' index and sorted every match: 130 ms against 18 for 10,000 of a site's findings)."""
    from services.extensions import db
    from services.findings import SITE_SORT_INDEXES, list_findings

    site = create_site(operator.user)
    _findings([site], 60)
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 5)
    statuses = ["open", "fixed"]
    query = list_findings(operator.user, site_id=site.id, status=statuses, sort=sort)
    expected = [finding.id for finding in db.session.scalars(query)]
    with statements() as sent:
        got = _all_pages(operator, f"/bugs?site_id={site.id}&sort={sort}&status=open&status=fixed")
    assert got == expected and len(expected) > 8
    forced = [s for s in sent if "FORCE INDEX" in s]
    index = SITE_SORT_INDEXES.get(sort)
    if db.engine.dialect.name == "mysql" and index:
        assert forced and all(f"FORCE INDEX ({index})" in s for s in forced)
    else:
        assert not forced
