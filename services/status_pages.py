"""Public status pages: who manages them, and what the public sees.

A page belongs to the user who made it (admins see and change every page). Putting a site on a page
publishes its state, so it takes write access to the site: an operator publishes its own sites and
those shared with it for write; a viewer publishes nothing.

The public view (`public_status`) is built for visitors who are not logged in: names, current states,
daily uptime over 90 days and the times of recent incidents — never URLs, incident causes (they name
hosts and errors), findings or tamper details. It is cached for PUBLIC_TTL_S (and dropped when the page
is edited), so a burst of visitors costs one computation, not one per hit; unknown slugs are cached too.
"""

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services import usability
from services.cache import cache
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.extensions import db
from services.models import Incident, Site, StatusPage, StatusPageSite, User
from services.schemas import SLUG
from services.sites import WRITE_ROLES, can_write, get_site, visible_site_ids

log = logging.getLogger(__name__)
PUBLIC_TTL_S = 30
RECENT_INCIDENTS = 20
INCIDENT_DAYS = usability.DAILY_DAYS


def list_pages(user: User) -> sa.Select:
    query = sa.select(StatusPage).order_by(StatusPage.id)
    if not user.is_admin:
        query = query.where(StatusPage.owner_id == user.id)
    return query


def get_page(user: User, page_id: int) -> StatusPage:
    page = db.session.get(StatusPage, page_id)
    if page is None or not (user.is_admin or page.owner_id == user.id):
        raise NotFound(f"status page {page_id} not found")
    return page


def create_page(user: User, data: dict) -> StatusPage:
    if user.role not in WRITE_ROLES:
        raise Forbidden("viewers cannot publish status pages")
    _check_sites(user, data["site_ids"])
    page = StatusPage(
        owner_id=user.id, slug=data["slug"], title=data["title"], description=data.get("description")
    )
    page.entries = _entries(data["site_ids"])
    db.session.add(page)
    _commit_unique_slug(data["slug"])
    invalidate_public(page.slug)
    log.info("status page created: id=%s slug=%s by user=%s", page.id, page.slug, user.id)
    return page


def update_page(user: User, page_id: int, changes: dict) -> StatusPage:
    page = get_page(user, page_id)
    if user.role not in WRITE_ROLES:
        raise Forbidden("viewers cannot change status pages")
    old_slug = page.slug
    if "site_ids" in changes:
        # Sites already on the page stay publishable by whoever edits it; new ones need write access.
        _check_sites(user, [sid for sid in changes["site_ids"] if sid not in page.site_ids])
        page.entries = _entries(changes["site_ids"], existing=page.entries)
    for field in ("slug", "title", "description"):
        if field in changes:
            setattr(page, field, changes[field])
    _commit_unique_slug(page.slug)
    invalidate_public(old_slug, page.slug)
    return page


def delete_page(user: User, page_id: int) -> None:
    page = get_page(user, page_id)
    if user.role not in WRITE_ROLES:
        raise Forbidden("viewers cannot delete status pages")
    slug = page.slug
    db.session.delete(page)
    db.session.commit()
    invalidate_public(slug)


def _check_sites(user: User, site_ids: list[int]) -> None:
    if not site_ids:
        return
    sites = {site.id: site for site in db.session.scalars(sa.select(Site).where(Site.id.in_(site_ids)))}
    errors = []
    for site_id in site_ids:
        site = sites.get(site_id)
        # An invisible site reads as missing, as everywhere else; a readable one says why it is refused.
        if site is None or not (user.is_admin or _readable(user, site)):
            errors.append(f"site {site_id} not found")
        elif not can_write(user, site):
            errors.append(f"site {site_id}: publishing it needs write access")
    if errors:
        raise Invalid("some sites cannot be put on this page", errors={"site_ids": errors})


def _readable(user: User, site: Site) -> bool:
    try:
        get_site(user, site.id)
    except NotFound:
        return False
    return True


def _entries(site_ids: list[int], existing=()) -> list[StatusPageSite]:
    kept = {entry.site_id: entry for entry in existing}
    entries = []
    for position, site_id in enumerate(site_ids):
        entry = kept.get(site_id) or StatusPageSite(site_id=site_id)
        entry.position = position
        entries.append(entry)
    return entries


def _commit_unique_slug(slug: str) -> None:
    taken = Conflict(f"the slug {slug!r} is taken", errors={"slug": ["already taken"]})
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:
        db.session.rollback()
        raise taken from exc


def _public_key(slug: str) -> str:
    return cache.key("status-page", slug)


def invalidate_public(*slugs: str) -> None:
    cache.invalidate(*(_public_key(slug) for slug in set(slugs)))


# --- the public view ---------------------------------------------------------------------------------


def public_status(slug: str) -> dict:
    """What `/status/<slug>`, its JSON twin and the badges show; NotFound for an unknown slug."""
    if not SLUG.match(slug):  # never a cache key or a query for what cannot be a slug
        raise NotFound(f"status page {slug[:64]!r} not found")
    key = _public_key(slug)
    cached, version = cache.get_versioned(key)
    if cached is None:
        cached = _compute_public(slug)
        cache.set_versioned(key, cached, version, ttl=PUBLIC_TTL_S)
    if cached.get("missing"):
        raise NotFound(f"status page {slug!r} not found")
    return cached


def _compute_public(slug: str) -> dict:
    page = db.session.scalar(sa.select(StatusPage).where(StatusPage.slug == slug))
    if page is None:
        return {"missing": True}
    site_ids = page.site_ids
    # Only what the page's owner may still see: a site unshared from them leaves their page.
    owner = db.session.get(User, page.owner_id)
    sites = {
        site.id: site
        for site in db.session.execute(
            sa.select(Site.id, Site.name, Site.state, Site.paused).where(
                Site.id.in_(site_ids), Site.id.in_(visible_site_ids(owner))
            )
        ).all()
    }
    shown = [site_id for site_id in site_ids if site_id in sites]
    now = datetime.now(UTC)
    daily = usability.daily_uptime(shown, now=now)
    rows = []
    for site_id in shown:
        site = sites[site_id]
        days = daily[site_id]
        rows.append(
            {
                "id": site.id,
                "name": site.name,
                "state": "paused" if site.paused else site.state,
                "uptime_90d": _overall(days),
                "daily_uptime": days,
            }
        )
    incidents = db.session.execute(
        sa.select(Incident.site_id, Incident.started_at, Incident.ended_at)
        .where(Incident.site_id.in_(shown), Incident.started_at >= now - timedelta(days=INCIDENT_DAYS))
        .order_by(Incident.started_at.desc())
        .limit(RECENT_INCIDENTS)
    ).all()
    first_day = usability.day_start(now) - timedelta(days=usability.DAILY_DAYS - 1)
    return {
        "slug": page.slug,
        "title": page.title,
        "description": page.description,
        "state": _page_state([row["state"] for row in rows]),
        "generated_at": now.isoformat(),
        "first_day": first_day.date().isoformat(),
        "sites": rows,
        "incidents": [
            {
                "site_id": incident.site_id,
                "site_name": sites[incident.site_id].name,
                "started_at": incident.started_at.isoformat(),
                "ended_at": incident.ended_at.isoformat() if incident.ended_at else None,
                "duration_s": (incident.ended_at - incident.started_at).total_seconds()
                if incident.ended_at
                else None,
            }
            for incident in incidents
        ],
    }


def _overall(days: list) -> float | None:
    known = [value for value in days if value is not None]
    return round(sum(known) / len(known), 3) if known else None


def _page_state(states: list[str]) -> str:
    """operational (all up), outage (every checked site down), degraded (anything between), unknown."""
    checked = [state for state in states if state in ("up", "pending", "down")]
    if not checked:
        return "unknown"
    if all(state == "up" for state in checked):
        return "operational"
    if all(state == "down" for state in checked):
        return "outage"
    return "degraded"


def public_site(slug: str, site_id: int) -> dict:
    """One site of a public page (its badge); NotFound unless the site is on that page."""
    for site in public_status(slug)["sites"]:
        if site["id"] == site_id:
            return site
    raise NotFound(f"site {site_id} is not on status page {slug!r}")
