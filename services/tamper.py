"""Tamper events and baselines: the rules of their whole life, for the worker and for people.

The worker (`sync/results.py`) hands every page it fetched to `check_page`; people triage events through
`update_event`. Deciding whether a page counts as tampering (normalising it, the change ratio, forbidden
words, new script domains) is `services/tamper_detect.py`.

- no baseline yet, or a new one requested (`POST /sites/{id}/tamper/baseline` sets
  `baseline_requested_at`) → the fetched page becomes the baseline, the request is cleared;
- otherwise the page is compared with the baseline; when it is tampered and an `open` event exists for
  the site, that event is updated (no event storm), else a new one opens;
- a page identical to the content of the site's latest `false_positive` event raises nothing: the
  user already said that exact page is fine (accepting it instead makes it the baseline);
- accepting an event makes its page the baseline; at most one event per site is open at a time.
Only the baseline (one row per site) and the events keep page content, zlib-compressed.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import defer

from services.alerts import events as alert_events
from services.errors import Invalid
from services.extensions import db
from services.models import Site, TamperBaseline, TamperEvent, User
from services.sites import filter_visible, get_site_row
from services.tamper_detect import compare, compress, decompress, external_script_domains, sha256

log = logging.getLogger(__name__)

# Which status may follow which. `open` is the only state the worker creates or updates.
TRANSITIONS = {
    "open": {"open", "accepted", "resolved", "false_positive"},
    "accepted": {"accepted"},
    "resolved": {"resolved", "open"},
    "false_positive": {"false_positive", "open"},
}


# --- the worker's side: a fetched page -------------------------------------------------------------


@dataclass
class TamperOutcome:
    action: str  # baseline | unchanged | clean | opened | updated | triaged
    event_id: int | None = None


def check_page(site: Site, html: str, fetched_at: datetime) -> TamperOutcome:
    """Run the tamper check on a page the worker fetched from `site`. The caller commits."""
    now = datetime.now(UTC)
    digest = sha256(html)
    baseline = _baseline_for_update(site.id)
    requested = site.baseline_requested_at
    if baseline is None or (requested is not None and requested <= fetched_at):
        _take_baseline(site, baseline, html, digest, fetched_at)
        if requested is not None and requested <= fetched_at:
            site.baseline_requested_at = None
        log.info("site %s: tamper baseline taken (%d chars)", site.id, len(html))
        return TamperOutcome("baseline")

    forbidden = list(site.forbidden_keywords or [])
    if digest == baseline.content_sha256 and not forbidden:
        return TamperOutcome("unchanged")  # same page, no forbidden words to look for: nothing can fire
    verdict = compare(
        decompress(baseline.content),
        html,
        site.url,
        site.tamper_threshold,
        list(site.tamper_ignore or []),
        forbidden,
        set(baseline.script_domains or []),
    )
    if not verdict.tampered:
        return TamperOutcome("clean")

    event = db.session.scalar(
        sa.select(TamperEvent)
        .where(TamperEvent.site_id == site.id, TamperEvent.status == "open")
        .order_by(TamperEvent.detected_at.desc())
        .limit(1)
        .with_for_update()
    )
    if event is None:
        latest = db.session.scalar(
            sa.select(TamperEvent)
            .where(TamperEvent.site_id == site.id)
            .order_by(TamperEvent.detected_at.desc(), TamperEvent.id.desc())
            .limit(1)
        )
        if latest is not None and latest.status == "false_positive" and latest.content_sha256 == digest:
            return TamperOutcome("triaged", latest.id)
        event = TamperEvent(site_id=site.id, status="open", detected_at=now)
        db.session.add(event)
        action = "opened"
    else:
        action = "updated"
    event.severity = verdict.severity
    event.change_ratio = verdict.change_ratio
    event.forbidden_found = verdict.forbidden
    event.new_domains = verdict.new_domains
    event.diff = verdict.diff
    if event.content_sha256 != digest:
        event.content = compress(html)
        event.content_sha256 = digest
    event.last_seen_at = now
    db.session.flush()
    if action == "opened":
        alert_events.tamper_opened(site, event, now)
        log.warning(
            "site %s: tamper event %s opened (ratio %.3f, forbidden %s, new domains %s)",
            site.id,
            event.id,
            verdict.change_ratio,
            verdict.forbidden,
            verdict.new_domains,
        )
    return TamperOutcome(action, event.id)


def _baseline_for_update(site_id: int) -> TamperBaseline | None:
    return db.session.scalar(
        sa.select(TamperBaseline).where(TamperBaseline.site_id == site_id).with_for_update()
    )


def _take_baseline(
    site: Site,
    baseline: TamperBaseline | None,
    html: str,
    digest: str,
    taken_at: datetime,
    compressed: bytes | None = None,
) -> TamperBaseline:
    """Make `html` what later fetches of `site` are compared against (the one place a baseline is built)."""
    if baseline is None:
        baseline = TamperBaseline(site_id=site.id)
        db.session.add(baseline)
    baseline.content = compressed if compressed is not None else compress(html)
    baseline.content_sha256 = digest
    baseline.script_domains = sorted(external_script_domains(html, site.url))
    baseline.taken_at = taken_at
    return baseline


# --- people's side: reading and triaging events -----------------------------------------------------


def list_events(user: User, site_id=None, status=None) -> sa.Select:
    # The page and its diff (up to megabytes each) are left out of lists; GET /tamper/events/{id} has the diff.
    query = sa.select(TamperEvent).options(defer(TamperEvent.content), defer(TamperEvent.diff))
    query = filter_visible(query, TamperEvent.site_id, user, site_id)
    if status:
        query = query.where(TamperEvent.status == status)
    return query.order_by(TamperEvent.detected_at.desc(), TamperEvent.id.desc())


def get_event(user: User, event_id: int, write: bool = False) -> TamperEvent:
    return get_site_row(user, TamperEvent, event_id, write=write, label="tamper event")


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
        _accept_as_baseline(event)
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


def _accept_as_baseline(event: TamperEvent) -> None:
    """The page that raised the event becomes what later fetches are compared against."""
    if event.content is None:
        raise Invalid("this event carries no page content to accept", errors={"status": ["no content"]})
    site = db.session.get(Site, event.site_id)
    _take_baseline(
        site,
        _baseline_for_update(site.id),
        decompress(event.content),
        event.content_sha256,
        datetime.now(UTC),
        compressed=event.content,
    )


def open_counts(user: User, site_ids: list[int]) -> dict[int, int]:
    """{site_id: number of open events} for the given sites the user may see (one grouped query)."""
    if not site_ids:
        return {}
    query = sa.select(TamperEvent.site_id, sa.func.count()).where(
        TamperEvent.site_id.in_(site_ids), TamperEvent.status == "open"
    )
    query = filter_visible(query, TamperEvent.site_id, user).group_by(TamperEvent.site_id)
    return {site_id: count for site_id, count in db.session.execute(query).all()}
