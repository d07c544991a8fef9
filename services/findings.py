"""Findings and import history: reading them, and triage by people (PATCH).

Visibility follows the site (services.sites): a finding of an invisible site is missing (404), and
changing one needs write access to its site (403 otherwise). Imports live in services/imports.py.
"""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import defer

from services import search
from services.extensions import db
from services.models import ACTIVE_STATUSES, SEVERITY_RANK, Finding, FindingImport, User
from services.paging import Split, count_bound, envelope, paginate
from services.search import contains_text
from services.sites import filter_visible, get_site, get_site_row, invalidate_site, visible_ids

log = logging.getLogger(__name__)

# Every order ends with the id so that pages never overlap; each is served by an index (alone and after
# site_id), so a page is read off the index rather than sorted from every matching finding.
SORTS = {
    "severity": (Finding.severity_rank.asc(), Finding.id.asc()),
    "-severity": (Finding.severity_rank.desc(), Finding.id.desc()),
    "last_seen_at": (Finding.last_seen_at.asc(), Finding.id.asc()),
    "-last_seen_at": (Finding.last_seen_at.desc(), Finding.id.desc()),
    "first_seen_at": (Finding.first_seen_at.asc(), Finding.id.asc()),
    "-first_seen_at": (Finding.first_seen_at.desc(), Finding.id.desc()),
    "id": (Finding.id.asc(),),
    "-id": (Finding.id.desc(),),
}
DEFAULT_SORT = "-severity"
SEVERITY_NAMES = {rank: name for name, rank in SEVERITY_RANK.items()}


# Indexes whose order spans every site: never the way to one site's findings.
TABLE_WIDE_INDEXES = (
    "ix_findings_severity",
    "ix_findings_status_sev",
    "ix_findings_last_seen",
    "ix_findings_first_seen",
)


def _listed() -> sa.Select:
    """Findings as lists show them: the long text columns are left out (GET /bugs/{id} has them)."""
    return sa.select(Finding).options(defer(Finding.description), defer(Finding.evidence))


def _ranks(severity: list[str] | None) -> list[int] | None:
    return sorted({SEVERITY_RANK[name] for name in severity}) if severity else None


def list_findings(
    user: User,
    site_id: int | None = None,
    severity: list[str] | None = None,
    status: list[str] | None = None,
    scanner: str | None = None,
    q: str | None = None,
    sort: str = DEFAULT_SORT,
) -> sa.Select:
    query = filter_visible(_listed(), Finding.site_id, user, site_id)
    if site_id is not None:
        # One site's list has its own (site_id, ...) index for every order. MySQL took a table-wide
        # order index when a filter seemed to make the site's rows rare (for site 1's fixed zap findings
        # it walked 270,000 fixed ones of other sites: 4.6 s); told to ignore those, 0.1 s.
        query = query.with_hint(Finding, f"IGNORE INDEX ({', '.join(TABLE_WIDE_INDEXES)})", "mysql")
    ranks = _ranks(severity)
    if ranks:
        # On the rank, which the (site_id, severity_rank, id, status) and (severity_rank) indexes hold.
        query = query.where(Finding.severity_rank.in_(ranks))
    if status:
        query = query.where(Finding.status.in_(status))
    if scanner:
        query = query.where(Finding.scanner == scanner)
    if q:
        # Always the LIKE itself; the index, when it helps, only says which findings to check it on.
        query = query.where(contains_text((Finding.title, Finding.location), q))
        site_ids = [site_id] if site_id is not None else visible_ids(user)
        candidates = search.finding_ids(q, site_ids, ranks)
        if candidates is not None:
            query = query.where(Finding.id.in_(candidates))
    return query.order_by(*SORTS[sort])


def list_page(
    user: User,
    page: int,
    per_page: int,
    site_id: int | None = None,
    severity: list[str] | None = None,
    status: list[str] | None = None,
    scanner: str | None = None,
    q: str | None = None,
    sort: str = DEFAULT_SORT,
) -> dict:
    """One page of findings with its total (the API's /bugs and the console's site page).

    A search in severity or id order, filtered at most by site and severity, is read off the search
    index's references, which carry both (services.search.page_by_refs): walking the findings in that
    order with LIKE read every finding of a higher severity than a common word's matches first. Any other
    list is `list_findings` through paging."""
    offset = (page - 1) * per_page
    if q and sort in search.REF_ORDERS and not status and not scanner:
        if site_id is not None:
            get_site(user, site_id)  # 404 when the user may not see it
        ranks = _ranks(severity)
        site_ids = [site_id] if site_id is not None else visible_ids(user)
        bound = count_bound(offset, per_page)
        found = search.page_by_refs(q, site_ids, ranks, sort, per_page, offset, bound)
        if found is not None:
            ids, total, estimate = found
            rows = _listed().where(Finding.id.in_(ids)).order_by(*SORTS[sort])
            items = db.session.scalars(rows).all() if ids else []
            return envelope(items, total, page, per_page, estimate)
    query = list_findings(user, site_id, severity, status, scanner, q, sort)
    # One site's big list is read in its order off the site's index for that order.
    order_index = SITE_SORT_INDEXES.get(sort) if site_id is not None else None
    split = split_by(user, site_id, status, sort)
    return paginate(query, {"page": page, "per_page": per_page}, split=split, order_index=order_index)


# The index on (site_id, the sort's column) each sort reads a site by (paginate's `split`).
SITE_SORT_INDEXES = {
    "severity": "ix_findings_site_sev_status",
    "-severity": "ix_findings_site_sev_status",
    "last_seen_at": "ix_findings_site_last_seen",
    "-last_seen_at": "ix_findings_site_last_seen",
    "first_seen_at": "ix_findings_site_first_seen",
    "-first_seen_at": "ix_findings_site_first_seen",
}
SEVERITY_SORTS = {"severity", "-severity"}


def split_by(user: User, site_id: int | None, status: list[str] | None, sort: str) -> Split | None:
    """paginate's `split` for list_findings: a non-admin's findings site by site (the (site_id, ...)
    indexes), or an admin's status filter in severity order status by status (`ix_findings_status_sev`:
    statuses follow severity, so walking the severity index for, say, the open ones can pass every
    critical and high finding first). None when one index read serves the list as it is."""
    if site_id is not None:
        return None
    ids = visible_ids(user)
    if ids is not None:
        return Split(Finding.site_id, ids, SITE_SORT_INDEXES[sort]) if sort in SITE_SORT_INDEXES else None
    if status and sort in SEVERITY_SORTS:
        return Split(Finding.status, sorted(status), "ix_findings_status_sev")
    return None


def get_finding(user: User, finding_id: int, write: bool = False) -> Finding:
    return get_site_row(user, Finding, finding_id, write=write, label="finding")


def update_finding(user: User, finding_id: int, changes: dict) -> Finding:
    """Triage: any status may follow any other (people correct each other). `fixed_at` is set when a
    finding becomes fixed and cleared when it leaves that state."""
    finding = get_finding(user, finding_id, write=True)
    new_status = changes.get("status", finding.status)
    if new_status != finding.status:
        if new_status == "fixed":
            finding.fixed_at = datetime.now(UTC)
        elif finding.status == "fixed":
            finding.fixed_at = None
        log.info("finding %s: %s -> %s by user %s", finding.id, finding.status, new_status, user.id)
        finding.status = new_status
    if "note" in changes:
        finding.note = changes["note"]
    db.session.commit()
    invalidate_site(finding.site_id)
    return finding


def list_imports(user: User, site_id: int | None = None) -> sa.Select:
    query = filter_visible(sa.select(FindingImport), FindingImport.site_id, user, site_id)
    return query.order_by(FindingImport.created_at.desc(), FindingImport.id.desc())


def get_import(user: User, import_id: int) -> FindingImport:
    return get_site_row(user, FindingImport, import_id, label="import")


def open_counts(user: User, site_ids: list[int]) -> dict[int, dict[str, int]]:
    """{site_id: {severity: open or confirmed findings}} for the given sites the user may see, read off
    the (site_id, severity_rank, id, status) index alone, in one grouped query."""
    if not site_ids:
        return {}
    query = sa.select(Finding.site_id, Finding.severity_rank, sa.func.count()).where(
        Finding.site_id.in_(site_ids), Finding.status.in_(ACTIVE_STATUSES)
    )
    query = filter_visible(query, Finding.site_id, user).group_by(Finding.site_id, Finding.severity_rank)
    counts: dict[int, dict[str, int]] = {}
    for site_id, rank, count in db.session.execute(query).all():
        counts.setdefault(site_id, {})[SEVERITY_NAMES[rank]] = count
    return counts
