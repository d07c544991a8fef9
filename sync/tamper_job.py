"""Tamper checks on the pages the probes fetched: baseline on first fetch, then compare and raise events.

Rules (services/tamper_detect.py decides what counts as tampering):
- no baseline yet, or a new one requested (`POST /sites/{id}/tamper/baseline` sets
  `baseline_requested_at`) → this page becomes the baseline, the request is cleared;
- otherwise the page is compared with the baseline; when it is tampered and an `open` event exists for
  the site, that event is updated (no event storm), else a new one opens;
- a page identical to the content of the site's latest `false_positive` event raises nothing: the
  user already said that exact page is fine (accepting it instead makes it the baseline).
Only the baseline (one row per site) and the event keep page content, zlib-compressed.
The caller commits.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from services.extensions import db
from services.models import Site, TamperBaseline, TamperEvent
from services.tamper_detect import compare, compress, decompress, external_script_domains, sha256

log = logging.getLogger(__name__)


@dataclass
class TamperOutcome:
    action: str  # baseline | unchanged | clean | opened | updated | triaged
    event_id: int | None = None


def check_page(site: Site, html: str, fetched_at: datetime) -> TamperOutcome:
    now = datetime.now(UTC)
    digest = sha256(html)
    baseline = db.session.scalar(
        sa.select(TamperBaseline).where(TamperBaseline.site_id == site.id).with_for_update()
    )
    requested = site.baseline_requested_at
    if baseline is None or (requested is not None and requested <= fetched_at):
        _store_baseline(site, baseline, html, digest, fetched_at)
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
        log.warning(
            "site %s: tamper event %s opened (ratio %.3f, forbidden %s, new domains %s)",
            site.id,
            event.id,
            verdict.change_ratio,
            verdict.forbidden,
            verdict.new_domains,
        )
    return TamperOutcome(action, event.id)


def _store_baseline(
    site: Site, baseline: TamperBaseline | None, html: str, digest: str, fetched_at: datetime
) -> None:
    if baseline is None:
        baseline = TamperBaseline(site_id=site.id)
        db.session.add(baseline)
    baseline.content = compress(html)
    baseline.content_sha256 = digest
    baseline.script_domains = sorted(external_script_domains(html, site.url))
    baseline.taken_at = fetched_at
