"""`q=` on findings through the trigram index: always exactly the findings LIKE '%q%' finds, whether they
are indexed, not yet indexed (the tail), in a hole, changed, deleted or of an invisible site."""

import itertools
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services import search
from services.extensions import db
from services.findings import SORTS, list_findings, list_page
from services.models import Finding, SearchRef, SearchState
from services.search import contains_text
from tests.factories import create_site, create_user, share

TITLES = [
    "Reflected XSS in search",
    "SQL injection in login",
    "Open redirect",
    "Cookie without Secure flag",
    "Café menu exposed",  # é: under a case- and accent-insensitive collation `cafe` matches it
    "Straße listing",
    "登录页面 XSS",
    "Tab\there",
    "100% CPU in a_b handler",
    "x",
    "UPPER Case Title",
]
LOCATIONS = [
    "https://shop.example.com/search?q=1",
    "https://example.com/admin/login",
    "https://api.example.org/v1/users",
    "",
    "https://CAFE.example.net/menu",
    "https://example.com/a_b/%41",
]
QUERIES = [
    "com", "COM", "xss", "XSS", "Xss", "cafe", "café", "CAFÉ", "é", "e", "ß", "strasse", "登录", "页面", "%",
    "_", "a_b", "100%", "%41", "zz", "x", "q", "in ", " in", "example.com/ad", "t\th", "login", "https://",
    "redirect", "secure flag", "upper case", "nothing like this", "ss", ".", "/", "v1/users", "a",
]  # fmt: skip


@pytest.fixture
def world(ctx):
    """An admin, an operator seeing two of three sites, and findings of every title × location."""
    admin = create_user("admin")
    operator = create_user("operator")
    other = create_user("operator")
    mine, shared, theirs = create_site(operator), create_site(other), create_site(other)
    share(shared, operator)
    add_findings([mine, shared, theirs], itertools.product(TITLES, LOCATIONS))
    return admin, operator, [mine, shared, theirs]


_numbers = itertools.count()


def add_findings(sites, pairs) -> None:
    now = datetime.now(UTC)
    rows = []
    for (title, location), site in zip(pairs, itertools.cycle(sites), strict=False):
        number = next(_numbers)
        rows.append(
            {
                "site_id": site.id,
                "scanner": "test",
                "dedup_key": f"k{number}",
                "rule_id": f"r{number % 7}",
                "title": title,
                "severity": "high",
                "severity_rank": 3,
                "status": "open",
                "location": location,
                "first_seen_at": now,
                "last_seen_at": now,
            }
        )
    db.session.execute(sa.insert(Finding), rows)
    db.session.commit()


def like_ids(user, q) -> list[int]:
    """Today's answer: LIKE alone, over what the user may see."""
    query = sa.select(Finding.id).where(contains_text((Finding.title, Finding.location), q))
    from services.sites import only_visible_sites

    return sorted(db.session.scalars(only_visible_sites(query, Finding.site_id, user)).all())


def listed_ids(user, q, site_id=None) -> list[int]:
    return sorted(
        f.id for f in db.session.scalars(list_findings(user, site_id=site_id, q=q, sort="id")).all()
    )


def paged_ids(user, q, site_id=None, sort="id") -> list[int]:
    """The ids of list_page's one big page (read off the search references when the index can answer)."""
    page = list_page(user, 1, 10_000, site_id=site_id, q=q, sort=sort)
    assert page["total"] == len(page["items"]) and not page["total_is_estimate"]
    return sorted(f.id for f in page["items"])


def assert_same_as_like(users, queries=QUERIES) -> None:
    for user in users:
        for q in queries:
            expected = like_ids(user, q)
            assert listed_ids(user, q) == expected, (user.role, q)
            for sort in ("id", "-severity"):
                assert paged_ids(user, q, sort=sort) == expected, (user.role, q, sort)


def test_before_any_indexing_everything_is_the_tail(world):
    admin, operator, _ = world
    assert search._watermark() == (0, [])
    assert search.finding_ids("redirect", None) is not None  # the index path, over the tail alone
    assert_same_as_like([admin, operator])


def test_indexed_findings_are_found_as_with_like(world):
    admin, operator, sites = world
    assert search.index_pending() == len(TITLES) * len(LOCATIONS)
    newest = db.session.scalar(sa.select(sa.func.max(Finding.id)))
    first = db.session.scalar(sa.select(sa.func.min(Finding.id)))
    # Ids below the first finding (used by rows deleted since, or not committed yet) are a hole.
    assert search._watermark() == (newest, [(1, first - 1)] if first > 1 else [])
    # The index is used (candidates, not None) and narrower than the table for a rare word.
    candidates = search.finding_ids("redirect", None)
    assert candidates is not None and 0 < len(candidates) < newest / 4
    assert_same_as_like([admin, operator])
    # Texts are stored once: 11 titles and 5 non-empty locations.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(search_texts())) == 16
    # Within one site.
    for q in ("com", "xss", "cafe"):
        assert listed_ids(operator, q, site_id=sites[0].id) == sorted(
            f for f in like_ids(operator, q) if db.session.get(Finding, f).site_id == sites[0].id
        )


def search_texts():
    return db.metadata.tables["search_texts"]


def test_new_findings_are_found_before_the_indexer_takes_them(world):
    admin, operator, sites = world
    search.index_pending()
    add_findings(sites, [("Brand new zebra finding", "https://zebra.example.com/"), ("x", "qqq")])
    assert "zebra" not in str(db.session.scalars(sa.select(search_texts().c.text)).all())
    assert_same_as_like([admin, operator], ["zebra", "ZEBRA", "qqq", "com"])
    assert len(listed_ids(admin, "zebra")) == 1
    search.index_pending()
    assert_same_as_like([admin, operator], ["zebra", "ZEBRA", "qqq", "com"])


def test_deleted_findings_leave_nothing_behind(world):
    admin, operator, sites = world
    search.index_pending()
    gone = db.session.scalars(sa.select(Finding.id).where(Finding.title == "Open redirect")).all()
    db.session.execute(sa.delete(Finding).where(Finding.id.in_(gone)))
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).where(SearchRef.finding_id.in_(gone))) == 0
    assert listed_ids(admin, "redirect") == [] == like_ids(admin, "redirect")
    assert_same_as_like([admin, operator])


def test_a_deleted_site_takes_its_findings_out_of_the_index_and_reused_ids_are_found(world):
    """On SQLite a new finding may get the id of a deleted one: it must not pass for indexed."""
    admin, operator, sites = world
    search.index_pending()
    newest = db.session.scalar(sa.select(sa.func.max(Finding.id)))
    db.session.execute(sa.delete(Finding).where(Finding.id > newest - 10))
    db.session.commit()
    add_findings(sites, [(f"Reused id {n}", f"https://reused.example.com/{n}") for n in range(10)])
    assert_same_as_like([admin, operator], ["reused", "com", "Reused id 3"])
    assert len(listed_ids(admin, "reused")) == 10
    search.index_pending()
    assert_same_as_like([admin, operator], ["reused", "com", "Reused id 3"])


def test_a_changed_title_is_found_once_reindexed(world):
    admin, operator, _ = world
    search.index_pending()
    finding = db.session.scalar(sa.select(Finding).where(Finding.title == "Open redirect").limit(1))
    finding.title = "Renamed to okapi"
    finding.location = "https://okapi.example.com/"
    search.reindex([finding.id])
    db.session.commit()
    # Found at once (it is searched with LIKE until indexed again), and the old text no longer matches.
    assert listed_ids(admin, "okapi") == [finding.id]
    assert finding.id not in listed_ids(admin, "redirect")
    search.index_pending()
    assert (finding.id, finding.id) not in search._watermark()[1]  # done with once indexed again
    assert listed_ids(admin, "okapi") == [finding.id]
    assert_same_as_like([admin, operator])


def test_without_reindex_a_changed_title_would_be_missed(world):
    """What `reindex` is for (and proof that these tests can fail): the index alone misses new text."""
    admin, _, _ = world
    search.index_pending()
    finding = db.session.scalar(sa.select(Finding).where(Finding.title == "Open redirect").limit(1))
    finding.title = "Renamed to okapi"
    db.session.commit()
    assert listed_ids(admin, "okapi") == [] != like_ids(admin, "okapi")


def test_findings_committed_late_into_a_hole_are_found(world):
    """A transaction may commit findings with ids below the watermark (MySQL hands out ids at insert,
    not at commit): the indexer keeps the gaps it passed as holes, searched with LIKE."""
    admin, operator, sites = world
    newest = db.session.scalar(sa.select(sa.func.max(Finding.id)))
    # A gap of 5 ids, then more findings: as if a slower transaction held newest+1 .. newest+5.
    add_findings(sites, [("filler", "")])
    db.session.execute(sa.update(Finding).where(Finding.id == newest + 1).values(id=newest + 6))
    db.session.commit()
    search.index_pending()
    indexed_to, holes = search._watermark()
    assert indexed_to == newest + 6 and any(lo <= newest + 1 and hi >= newest + 5 for lo, hi in holes)
    late = db.session.execute(
        sa.insert(Finding).values(
            id=newest + 3,
            site_id=sites[0].id,
            scanner="test",
            dedup_key="late",
            rule_id="late",
            title="Late walrus",
            severity="low",
            severity_rank=1,
            status="open",
            location="https://walrus.example.com/",
            first_seen_at=datetime.now(UTC),
            last_seen_at=datetime.now(UTC),
        )
    )
    db.session.commit()
    assert late.rowcount == 1
    assert listed_ids(admin, "walrus") == [newest + 3]
    assert_same_as_like([admin, operator], ["walrus", "com"])
    search.index_pending()  # looks at the hole again: the late finding is indexed
    assert db.session.scalar(sa.select(sa.func.count()).where(SearchRef.finding_id == newest + 3)) == 2
    assert_same_as_like([admin, operator], ["walrus", "com"])


def test_common_queries_and_a_lagging_indexer_fall_back_to_like(world, monkeypatch):
    admin, operator, _ = world
    search.index_pending()
    monkeypatch.setattr(search, "CANDIDATES_MAX", 5)
    assert search.finding_ids("com", None) is None
    assert_same_as_like([admin, operator])
    monkeypatch.setattr(search, "CANDIDATES_MAX", 10_000)
    monkeypatch.setattr(search, "TEXTS_MAX", 1)
    assert search.finding_ids("com", None) is None
    assert_same_as_like([admin, operator])
    monkeypatch.setattr(search, "TEXTS_MAX", 20_000)
    db.session.execute(sa.update(SearchState).values(value=0))
    db.session.commit()
    monkeypatch.setattr(search, "TAIL_MAX", 10)
    assert search.finding_ids("redirect", None) is None
    assert_same_as_like([admin, operator])


def test_an_operator_never_gets_another_users_findings(world):
    admin, operator, sites = world
    search.index_pending()
    theirs = {f for f in like_ids(admin, "com") if db.session.get(Finding, f).site_id == sites[2].id}
    assert theirs and not theirs & set(listed_ids(operator, "com"))
    assert search.finding_ids("com", []) == []


def test_the_api_answers_the_same(world, client):
    from tests.factories import api, token_for

    admin, operator, _ = world
    search.index_pending()
    headers = {"Authorization": f"Bearer {token_for(operator)}"}
    for q in ("cafe", "xss", "a_b", "com"):
        body = client.get(api("/bugs"), query_string={"q": q, "per_page": 100, "sort": "id"}, headers=headers)
        assert sorted(item["id"] for item in body.get_json()["items"]) == like_ids(operator, q)


def test_short_queries_use_the_trigrams_that_contain_them(world):
    admin, operator, _ = world
    search.index_pending()
    for q in ("zq", "xs", "Q", "~", "a", "%", "ß"):
        assert_same_as_like([admin, operator], [q])
    assert search.finding_ids("xs", None) is not None  # the index path: "xss" contains "xs"
    assert search.finding_ids("zq", None) == []  # no trigram has it, no bucket text contains it


def test_query_grams():
    assert search.query_grams("ab") == set()
    assert search.query_grams("abc") == {search.text_grams("abc").pop()}
    assert search.query_grams("ABC") == search.query_grams("abc")
    assert search.query_grams("café") == search.text_grams("caf")
    assert search.text_grams("café") == {search.BUCKET}
    assert search.text_grams("a\tbcd") == {search.BUCKET}
    assert search.text_grams("ab") == {search.BUCKET}  # too short for a trigram: checked by every search


RANKS = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


@pytest.fixture
def ranked_world(world):
    """The world with every severity (in a pattern unrelated to the ids), partly indexed: some findings
    past the watermark (the tail) and one in a hole."""
    admin, operator, sites = world
    ids = db.session.scalars(sa.select(Finding.id).order_by(Finding.id)).all()
    for n, finding_id in enumerate(ids):
        severity = list(RANKS)[(n * 7) % 5]
        db.session.execute(
            sa.update(Finding)
            .where(Finding.id == finding_id)
            .values(severity=severity, severity_rank=RANKS[severity])
        )
    db.session.commit()
    search.index_pending()
    add_findings(sites, itertools.product(["Open redirect in cart", "XSS in cart"], LOCATIONS[:3]))
    search.reindex([ids[5]])
    db.session.commit()
    return admin, operator, sites


def like_page(user, q, sort, page, per_page, site_id=None, severity=None):
    """Today's page: LIKE over what the user may see, in the list's order."""
    from services.sites import only_visible_sites

    query = sa.select(Finding.id).where(contains_text((Finding.title, Finding.location), q))
    query = only_visible_sites(query, Finding.site_id, user)
    if site_id is not None:
        query = query.where(Finding.site_id == site_id)
    if severity:
        query = query.where(Finding.severity.in_(severity))
    ids = db.session.scalars(query.order_by(*SORTS[sort])).all()
    return ids[(page - 1) * per_page : page * per_page], len(ids)


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_a_search_page_is_the_like_page_in_every_order(ranked_world, sort, monkeypatch):
    """Off the references in the orders they keep; in the others through list_findings, whose candidates
    from the index are narrowed by site and severity."""
    admin, operator, sites = ranked_world
    used = []
    real = search.page_by_refs
    monkeypatch.setattr(search, "page_by_refs", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    for user in (admin, operator):
        for q in ("com", "cart", "redirect", "xss", "cafe", "in ", "zz", "e"):
            for filters in ({}, {"site_id": sites[0].id}, {"severity": ["high", "low"]}):
                for per_page in (4, 7):
                    page = 1
                    while True:
                        expected, total = like_page(user, q, sort, page, per_page, **filters)
                        got = list_page(user, page, per_page, q=q, sort=sort, **filters)
                        context = (user.role, q, filters, per_page, page)
                        assert [f.id for f in got["items"]] == expected, context
                        assert (got["total"], got["total_is_estimate"]) == (total, False), context
                        if not expected:
                            break
                        page += 1
    if sort in search.REF_ORDERS:
        assert used and all(found is not None for found in used)  # the references answered every page
    else:
        assert not used


def test_a_search_off_the_references_counts_up_to_the_bound(ranked_world, monkeypatch):
    from services import paging

    admin, _, _ = ranked_world
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 5)
    matches = len(like_ids(admin, "com"))
    assert matches > 5
    first = list_page(admin, 1, 3, q="com")
    assert (first["total"], first["total_is_estimate"]) == (5, True)
    assert [f.id for f in first["items"]] == like_page(admin, "com", "-severity", 1, 3)[0]
    # A page past the bound counts to its own end, and the last pages are exact again.
    third = list_page(admin, 3, 3, q="com")
    assert [f.id for f in third["items"]] == like_page(admin, "com", "-severity", 3, 3)[0]
    assert third["total"] == min(9, matches) and third["total_is_estimate"] == (matches > 9)
    assert list_page(admin, 1, 3, q="Open redirect in cart")["total_is_estimate"] is False


def test_a_search_of_a_site_the_user_may_not_see_is_404(ranked_world):
    from services.errors import NotFound

    _, operator, sites = ranked_world
    with pytest.raises(NotFound):
        list_page(operator, 1, 20, site_id=sites[2].id, q="com")


def test_candidates_are_narrowed_by_severity(ranked_world):
    """A search with a severity filter takes only that severity's references (a common word of another
    severity would otherwise make the candidates too many, and the search a walk of the table)."""
    search.index_pending()
    candidates = search.finding_ids("com", None, [RANKS["high"]])
    ranks = set(db.session.scalars(sa.select(Finding.severity_rank).where(Finding.id.in_(candidates))))
    assert candidates and ranks == {RANKS["high"]}


def test_many_matching_texts_are_used_as_a_subquery(ranked_world, monkeypatch):
    admin, operator, sites = ranked_world
    monkeypatch.setattr(search, "TEXT_LIST_MAX", 1)
    for user in (admin, operator):
        for q in ("com", "cart", "in "):
            for sort in search.REF_ORDERS:
                expected, total = like_page(user, q, sort, 2, 5)
                got = list_page(user, 2, 5, q=q, sort=sort)
                assert ([f.id for f in got["items"]], got["total"]) == (expected, total), (user.role, q, sort)


def test_references_without_a_rank_read_their_findings(ranked_world):
    """A sync worker of the release before the column, still running while the migration ran, writes
    references without a severity rank: searches take the finding's."""
    admin, operator, _ = ranked_world
    db.session.execute(sa.update(SearchRef).where(SearchRef.finding_id % 3 == 0).values(severity_rank=None))
    db.session.commit()
    for user in (admin, operator):
        for q in ("com", "in ", "cart"):
            for sort in search.REF_ORDERS:
                for severity in (None, ["high", "info"]):
                    expected, total = like_page(user, q, sort, 1, 50, severity=severity)
                    got = list_page(user, 1, 50, q=q, sort=sort, severity=severity)
                    assert [f.id for f in got["items"]] == expected, (user.role, q, sort, severity)
                    assert got["total"] == total
