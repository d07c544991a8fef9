"""Tamper events: reading them and their transitions (accepting one moves the baseline).

Detection itself (normalising pages, change ratio, forbidden words, new script domains) lives in
`services/tamper_detect.py`, which the sync worker calls.
"""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import defer

from services.errors import Invalid, NotFound
from services.extensions import db
from services.models import TamperBaseline, TamperEvent, User
from services.sites import get_site, only_visible_sites

log = logging.getLogger(__name__)

# Which status may follow which. `open` is the only state the worker creates or updates.
TRANSITIONS = {
    "open": {"open", "accepted", "resolved", "false_positive"},
    "accepted": {"accepted"},
    "resolved": {"resolved", "open"},
    "false_positive": {"false_positive", "open"},
}


def list_events(user: User, site_id=None, status=None) -> sa.Select:
    # The page and its diff (up to megabytes each) are left out of lists; GET /tamper/events/{id} has the diff.
    query = sa.select(TamperEvent).options(defer(TamperEvent.content), defer(TamperEvent.diff))
    if site_id is not None:
        get_site(user, site_id)
        query = query.where(TamperEvent.site_id == site_id)
    else:
        query = only_visible_sites(query, TamperEvent.site_id, user)
    if status:
        query = query.where(TamperEvent.status == status)
    return query.order_by(TamperEvent.detected_at.desc(), TamperEvent.id.desc())


def get_event(user: User, event_id: int, write: bool = False) -> TamperEvent:
    event = db.session.get(TamperEvent, event_id)
    if event is None:
        raise NotFound(f"tamper event {event_id} not found")
    try:
        get_site(user, event.site_id, write=write)
    except NotFound:
        raise NotFound(f"tamper event {event_id} not found") from None
    return event


def update_event(user: User, event_id: int, changes: dict) -> TamperEvent:
    event = get_event(user, event_id, write=True)
    new_status = changes.get("status", event.status)
    if new_status not in TRANSITIONS[event.status]:
        raise Invalid(
            f"an event that is {event.status} cannot become {new_status}",
            errors={"status": [f"allowed from {event.status}: {sorted(TRANSITIONS[event.status])}"]},
        )
    if new_status == "open" and event.status != "open":
        _ensure_single_open(event)
    if new_status == "accepted" and event.status != "accepted":
        _make_baseline(event)
    if new_status != event.status:
        event.handled_by_id = user.id
        event.handled_at = datetime.now(UTC)
        log.info("tamper event %s: %s -> %s by user %s", event.id, event.status, new_status, user.id)
    event.status = new_status
    if "note" in changes:
        event.note = changes["note"]
    db.session.commit()
    return event


def _ensure_single_open(event: TamperEvent) -> None:
    other = db.session.scalar(
        sa.select(TamperEvent.id).where(
            TamperEvent.site_id == event.site_id, TamperEvent.status == "open", TamperEvent.id != event.id
        )
    )
    if other is not None:
        raise Invalid(
            f"event {other} is already open for this site; handle it first",
            errors={"status": ["another event is open for this site"]},
        )


def _make_baseline(event: TamperEvent) -> None:
    """The page that raised the event becomes what later fetches are compared against."""
    if event.content is None:
        raise Invalid("this event carries no page content to accept", errors={"status": ["no content"]})
    from services.tamper_detect import decompress, external_script_domains

    baseline = db.session.scalar(
        sa.select(TamperBaseline).where(TamperBaseline.site_id == event.site_id).with_for_update()
    )
    if baseline is None:
        baseline = TamperBaseline(site_id=event.site_id)
        db.session.add(baseline)
    baseline.content = event.content
    baseline.content_sha256 = event.content_sha256
    baseline.script_domains = sorted(external_script_domains(decompress(event.content), _site_url(event)))
    baseline.taken_at = datetime.now(UTC)


def _site_url(event: TamperEvent) -> str:
    from services.models import Site

    return db.session.get(Site, event.site_id).url


def open_counts(user: User, site_ids: list[int]) -> dict[int, int]:
    """{site_id: number of open events} for the given sites the user may see (one grouped query)."""
    if not site_ids:
        return {}
    query = sa.select(TamperEvent.site_id, sa.func.count()).where(
        TamperEvent.site_id.in_(site_ids), TamperEvent.status == "open"
    )
    query = only_visible_sites(query, TamperEvent.site_id, user).group_by(TamperEvent.site_id)
    return {site_id: count for site_id, count in db.session.execute(query).all()}
