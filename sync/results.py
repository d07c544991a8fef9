"""Writing probe results: checks, states, incidents and rollups in one transaction per batch (`store`);
then, for each stored result, the tamper check and the built-in findings, each in a transaction of its
own (`follow_up`), so a failure there never loses the availability data. The worker runs follow-ups on
threads of their own, so that a slow diff or findings reconciliation never holds up the recording of checks."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services import tamper
from services.extensions import db
from services.models import Site
from services.scheduler import Claim, record_claimed
from services.usability import CheckResult
from sync import builtin_findings
from sync.probe import ProbeResult

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    claim: Claim
    result: ProbeResult
    # The built-in findings of the answer, once evaluated (follow_ups_to_run): not evaluated twice.
    findings: list | None = None


@dataclass
class BatchReport:
    stored: int = 0
    skipped: int = 0  # slot already recorded (another worker), or the site is gone
    failed: int = 0  # could not be written: the claim expires and the check runs again
    tamper: dict = field(default_factory=dict)  # action -> count
    findings_reconciled: int = 0
    lateness_s: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)  # the stored ones, for the follow-ups

    def add(self, other: "BatchReport", samples: bool = True) -> None:
        """Add `other`'s counts; with `samples` false, not its per-check lateness and outcomes (running
        totals of a long-lived worker must not grow with every check)."""
        self.stored += other.stored
        self.skipped += other.skipped
        self.failed += other.failed
        for action, count in other.tamper.items():
            self.tamper[action] = self.tamper.get(action, 0) + count
        self.findings_reconciled += other.findings_reconciled
        if samples:
            self.lateness_s.extend(other.lateness_s)
            self.outcomes.extend(other.outcomes)


def store(outcomes: list[Outcome]) -> BatchReport:
    """Record a batch of results and schedule the sites' next checks (one transaction)."""
    report = BatchReport()
    if not outcomes:
        return report
    try:
        stored = _store_checks(outcomes)
    except Exception:
        db.session.rollback()
        if len(outcomes) == 1:
            log.exception("could not store the check of site %s", outcomes[0].claim.site_id)
            report.failed = 1
            return report
        # One bad row (or a deadlock) must not sink the batch: write them one by one.
        log.warning("batch of %d results failed, storing them one by one", len(outcomes), exc_info=True)
        for outcome in outcomes:
            report.add(store([outcome]))
        return report
    report.stored = len(stored)
    report.skipped = len(outcomes) - len(stored)
    report.outcomes = stored
    report.lateness_s = [(o.result.started_at - o.claim.due_at).total_seconds() for o in stored]
    return report


def needs_follow_up(outcome: Outcome) -> bool:
    """Whether the answer feeds the tamper check and the built-in findings: an accepted answer, from the
    site's one vantage point for those (any location, or the first of its locations)."""
    return outcome.claim.primary and outcome.result.status_accepted and outcome.result.headers is not None


def follow_ups_to_run(outcomes: list[Outcome]) -> list[Outcome]:
    """The stored outcomes that have follow-up work: a tamper check, or built-in findings that differ
    from the ones remembered for the site (one cache round trip for the batch). Most checks of a site
    that answers the same way every time have none, and cost the follow-up threads nothing."""
    candidates = [o for o in outcomes if needs_follow_up(o)]
    now = datetime.now(UTC)
    for outcome in candidates:
        outcome.findings = builtin_findings.evaluate(outcome.result, now)
    same = builtin_findings.unchanged(
        {o.claim.site_id: o.findings for o in candidates if o.findings is not None}
    )
    return [
        o for o in candidates if _wants_tamper(o) or (o.findings is not None and o.claim.site_id not in same)
    ]


def _wants_tamper(outcome: Outcome) -> bool:
    result = outcome.result
    return outcome.claim.tamper_enabled and result.status_accepted and result.body is not None


def follow_up(outcome: Outcome, findings_refresh_s: int = 3600) -> BatchReport:
    """The tamper check and the built-in findings of one stored result."""
    report = BatchReport()
    if needs_follow_up(outcome):
        _tamper(outcome, report)
        _findings(outcome, report, findings_refresh_s)
    return report


def check_result(claim: Claim, result: ProbeResult) -> CheckResult:
    """What a probe found, as the usability records take it."""
    return CheckResult(
        site_id=claim.site_id,
        due_at=claim.due_at,
        checked_at=result.started_at,
        up=result.up,
        http_status=result.http_status,
        response_ms=result.response_ms,
        failure_kind=result.failure_kind,
        reason=result.reason,
        tls_expires_at=result.tls_expires_at,
        location=claim.location,
    )


def _store_checks(outcomes: list[Outcome]) -> list[Outcome]:
    recorded = record_claimed([(o.claim, check_result(o.claim, o.result)) for o in outcomes])
    return [o for o in outcomes if (o.claim.site_id, o.claim.due_at, o.claim.location) in recorded]


def _tamper(outcome: Outcome, report: BatchReport) -> None:
    result = outcome.result
    if not _wants_tamper(outcome):
        return
    site_id = outcome.claim.site_id
    try:
        site = db.session.get(Site, site_id)
        if site is None or not site.tamper_enabled:
            db.session.rollback()
            return
        action = tamper.check_page(site, result.body, result.started_at).action
        db.session.commit()
        report.tamper[action] = report.tamper.get(action, 0) + 1
    except Exception:
        db.session.rollback()
        log.exception("tamper check of site %s failed", site_id)


def _findings(outcome: Outcome, report: BatchReport, refresh_s: int) -> None:
    site_id = outcome.claim.site_id
    findings = outcome.findings
    if findings is None:
        findings = builtin_findings.evaluate(outcome.result, datetime.now(UTC))
    if findings is None:
        return
    try:
        if db.session.get(Site, site_id) is None:
            return
        counts = builtin_findings.reconcile_if_changed(site_id, findings)
        if counts is None:
            return
        db.session.commit()
        builtin_findings.remember_fingerprint(site_id, findings, refresh_s)
        report.findings_reconciled += 1
        if counts.get("created") or counts.get("reopened") or counts.get("closed"):
            log.info("site %s: built-in findings %s", site_id, counts)
    except Exception:
        db.session.rollback()
        log.exception("built-in findings of site %s failed", site_id)
