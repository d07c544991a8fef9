"""What the console's overview and site pages show, each gathered in one call with the caller's
permissions (every read goes through the per-domain services and their visibility rules)."""

import sqlalchemy as sa

from services import findings, sites, tamper, usability
from services.alerts import maintenance
from services.extensions import db
from services.models import Site, User
from services.paging import paginate

RECENT_CHECKS = 20
RECENT_INCIDENTS = 10
RECENT_EVENTS = 20
RECENT_IMPORTS = 5


def overview(user: User, q=None, state=None, page: int = 1, per_page: int = 25) -> dict:
    """One page of the visible sites, each with its summary (state, uptime, latency), 90 days of daily
    uptime, 24 hourly latencies, open tamper events and open findings by severity."""
    result = paginate(sites.list_sites(user, q, state), {"page": page, "per_page": per_page})
    ids = [site.id for site in result["items"]]
    daily = usability.daily_uptime(ids)
    latency = usability.hourly_latency(ids)
    events = tamper.open_counts(user, ids)
    open_findings = findings.open_counts(user, ids)
    result["items"] = [
        {
            "site": site,
            "summary": usability.summary(user, site.id),
            "daily_uptime": daily[site.id],
            "latency": latency[site.id],
            "open_events": events.get(site.id, 0),
            "open_findings": open_findings.get(site.id, {}),
        }
        for site in result["items"]
    ]
    result["states"] = state_counts(user)
    return result


def state_counts(user: User) -> dict[str, int]:
    """{state: number of visible sites}, paused sites counted apart."""
    query = (
        sa.select(Site.state, Site.paused, sa.func.count())
        .where(Site.id.in_(sites.visible_site_ids(user)))
        .group_by(Site.state, Site.paused)
    )
    counts: dict[str, int] = {}
    for state, paused, count in db.session.execute(query).all():
        key = "paused" if paused else state
        counts[key] = counts.get(key, 0) + count
    return counts


def site_detail(user: User, site_id: int) -> dict:
    """One site with everything its page shows but the findings (listed with their own filters), its
    maintenance (now and next) included."""
    site = sites.get_site(user, site_id)
    return {
        "site": site,
        "can_write": sites.can_write(user, site),
        "summary": usability.summary(user, site.id),
        "daily_uptime": usability.daily_uptime([site.id])[site.id],
        "incidents": db.session.scalars(
            usability.list_incidents(user, site.id).limit(RECENT_INCIDENTS)
        ).all(),
        "checks": db.session.scalars(usability.list_checks(user, site.id).limit(RECENT_CHECKS)).all(),
        "events": db.session.scalars(tamper.list_events(user, site.id).limit(RECENT_EVENTS)).all(),
        "open_findings": findings.open_counts(user, [site.id]).get(site.id, {}),
        "imports": db.session.scalars(findings.list_imports(user, site.id).limit(RECENT_IMPORTS)).all(),
        "maintenance": maintenance.site_schedule(site.id),
    }
