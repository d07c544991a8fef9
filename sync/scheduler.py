"""Claiming due checks so that any number of workers share the sites, and each due check runs once.

A site is due when it is not paused, `next_check_at` has passed and nobody holds a live claim on it.
Claiming happens in one short transaction: `SELECT ... FOR UPDATE SKIP LOCKED` (MySQL 8 / MariaDB 10.6)
picks rows no other worker is claiming at that moment, and `claimed_until` is set to a lease
(the site's timeout plus SYNC_LEASE_MARGIN_S). `next_check_at` stays what it was: it is the check's
`due_at`, the slot that `usability_checks` has a unique key on.

When the result is written (`finish`, in the writer's transaction, the site row locked) the claim is
cleared and `next_check_at` moves to the next slot. A worker killed in between leaves the claim to
expire; the next worker claims the same slot again, so nothing is lost, and since the slot is the
unique key, nothing is counted twice even if the first worker was only slow.

SQLite ignores FOR UPDATE; there the conditional UPDATE (which re-checks that the row is still
unclaimed under SQLite's single-writer lock) decides who got which row.
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.extensions import db
from services.models import Site
from services.sites import join_credentials
from sync.probe import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    target: Target
    due_at: datetime  # the slot: the site's next_check_at when it was claimed
    claimed_at: datetime
    claimed_until: datetime  # the lease, also this claim's token: finish() only acts if it still matches
    check_interval_s: int
    tamper_enabled: bool


def _due_condition(now: datetime):
    return sa.and_(
        Site.paused.is_(False),
        sa.or_(Site.next_check_at.is_(None), Site.next_check_at <= now),
        sa.or_(Site.claimed_until.is_(None), Site.claimed_until < now),
    )


def claim_due(limit: int, lease_margin_s: float, now: datetime | None = None) -> list[Claim]:
    """Claim up to `limit` due checks, oldest due first, and commit. Returns what this worker got."""
    if limit <= 0:
        return []
    now = now or datetime.now(UTC)
    candidates = db.session.execute(
        sa.select(Site.id, Site.timeout_s)
        .where(_due_condition(now))
        .order_by(Site.next_check_at, Site.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        db.session.rollback()
        return []
    # A distinct lease per row, microsecond-precise: the claim's token.
    leases = {row.id: now + timedelta(seconds=row.timeout_s + lease_margin_s) for row in candidates}
    table = Site.__table__
    db.session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"), _due_condition(now))
        .values(claimed_until=sa.bindparam("b_until"), updated_at=table.c.updated_at)
        .execution_options(synchronize_session=False),
        [{"b_id": site_id, "b_until": until} for site_id, until in leases.items()],
    )
    rows = db.session.execute(
        sa.select(
            Site.id,
            Site.url,
            Site.url_password,
            Site.timeout_s,
            Site.accepted_status,
            Site.keyword,
            Site.keyword_absent,
            Site.tamper_enabled,
            Site.check_interval_s,
            Site.next_check_at,
            Site.claimed_until,
        ).where(Site.id.in_(leases))
    ).all()
    db.session.commit()
    claims = []
    for row in rows:
        if row.claimed_until != leases[row.id]:
            continue  # SQLite: another worker got there first
        claims.append(
            Claim(
                target=Target(
                    site_id=row.id,
                    url=join_credentials(row.url, row.url_password),
                    timeout_s=row.timeout_s,
                    accepted_status=row.accepted_status,
                    keyword=row.keyword,
                    keyword_absent=row.keyword_absent,
                    keep_body=row.tamper_enabled,
                ),
                due_at=row.next_check_at or now,
                claimed_at=now,
                claimed_until=row.claimed_until,
                check_interval_s=row.check_interval_s,
                tamper_enabled=row.tamper_enabled,
            )
        )
    claims.sort(key=lambda c: c.due_at)
    return claims


def next_slot(due_at: datetime, interval_s: int, now: datetime) -> datetime:
    """The next point on the site's grid (due_at + k * interval) after `now`: a late check does not
    shift the schedule, and a worker that fell far behind skips the missed slots instead of bursting."""
    interval = timedelta(seconds=max(1, interval_s))
    following = due_at + interval
    if following > now:
        return following
    missed = math.floor((now - due_at) / interval)
    return due_at + interval * (missed + 1)


def finish(site: Site, claim: Claim, now: datetime) -> bool:
    """Release the claim and schedule the next check, in the caller's transaction (site row locked).

    Does nothing if the claim is no longer this worker's (it expired and another worker took it: that
    worker schedules). If the API asked for a check meanwhile (next_check_at moved), that request stands.
    """
    if site.claimed_until != claim.claimed_until:
        return False
    site.claimed_until = None
    if site.next_check_at is None or site.next_check_at == claim.due_at:
        site.next_check_at = next_slot(claim.due_at, site.check_interval_s, now)
    if site.check_requested_at is not None and site.check_requested_at <= claim.claimed_at:
        site.check_requested_at = None
    return True


def release(claims: list[Claim]) -> int:
    """Give back claims that will not be finished (shutdown): they are due again at once. Commits."""
    if not claims:
        return 0
    table = Site.__table__
    result = db.session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"), table.c.claimed_until == sa.bindparam("b_until"))
        .values(claimed_until=None, updated_at=table.c.updated_at)
        .execution_options(synchronize_session=False),
        [{"b_id": c.target.site_id, "b_until": c.claimed_until} for c in claims],
    )
    db.session.commit()
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(claims)
