"""Claiming due checks so that any number of workers and agents share the sites, and each due check runs
once per location; recording what they found.

Two kinds of claim, both leases on a row:

- a site checked from **any location** (`sites.locations` empty): the `sites` row. It is due when it is
  not paused, `next_check_at` has passed and nobody holds a live claim (`claimed_until`); any sync replica,
  whatever its location, may take it; exactly one check per slot;
- a site with **locations**: one `site_locations` row per location, with its own `next_check_at` and
  `claimed_until`. Only workers (or the agent) of that location take it; one check per slot and location.
  A paused site's rows have no `next_check_at`, so they are never due (`services.sites` keeps them so).

`claim_due` takes both kinds in one short transaction: `SELECT ... FOR UPDATE SKIP LOCKED` (MySQL 8 /
MariaDB 10.6) on each table picks rows no other worker is claiming at that moment, served by the indexes
`ix_site_locations_due (location, next_check_at)` and `ix_sites_due (paused, next_check_at)` (the sites'
probe settings come with their rows; those of sites with locations in one more read); then one UPDATE per
table and lease sets `claimed_until` = now + the look-ahead + the site's timeout + SYNC_LEASE_MARGIN_S.
Rows of the worker's location come first, then sites of any location with what is left of the limit.
A sync worker claims up to `ahead_s` before the due time and starts each check at its due time
(sync/worker.py); an agent claims only what is due.
`next_check_at` stays what it was: it is the check's `due_at`, the slot `usability_checks` is unique on
(with the location).

When the result is written (`record_claimed`, one transaction, sites and then site_locations rows locked
in id order) the check is recorded and `finish` clears the claim and moves `next_check_at` to the next
slot. A worker killed in between leaves the claim to expire; the next worker of that location claims the
same slot again, so nothing is lost, and nothing is counted twice even if the first was only slow.

SQLite ignores FOR UPDATE; there the conditional UPDATE (which re-checks that the row is still
unclaimed under SQLite's single-writer lock) decides who got which row.
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.extensions import db
from services.models import Site, SiteLocation
from services.sites import join_credentials
from services.usability import CheckResult, lock_sites, record_results

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """A claim's slot and lease: what finishing (or giving back) a check needs."""

    site_id: int
    location: str  # where the check is made from
    per_location: bool  # a site_locations row (a site with locations), else the sites row
    due_at: datetime  # the slot: next_check_at when it was claimed
    claimed_at: datetime
    claimed_until: datetime  # the lease, also this claim's token: finish() only acts if it still matches

    @property
    def key(self) -> tuple[int, bool]:
        return self.site_id, self.per_location


@dataclass(frozen=True)
class Claim(Lease):
    """One due check handed to a worker or an agent: its lease, and the site's probe settings as they
    were when claimed (probes run outside any database session)."""

    url: str
    timeout_s: int
    accepted_status: str
    keyword: str | None
    keyword_absent: bool
    check_interval_s: int
    tamper_enabled: bool
    # Whether the page of this check feeds the tamper check and the built-in findings: a site checked
    # from any location, or the first of a site's locations (one vantage point, or pages served per
    # region would look tampered with).
    primary: bool


def _site_due(now: datetime, due_by: datetime | None = None):
    # next_check_at null: a site with locations (scheduled in site_locations), never due here.
    return sa.and_(
        Site.paused.is_(False),
        Site.next_check_at <= (due_by or now),
        sa.or_(Site.claimed_until.is_(None), Site.claimed_until < now),
    )


def _location_due(location: str, now: datetime, due_by: datetime | None = None):
    return sa.and_(
        SiteLocation.location == location,
        SiteLocation.next_check_at <= (due_by or now),
        sa.or_(SiteLocation.claimed_until.is_(None), SiteLocation.claimed_until < now),
    )


def claim_due(
    limit: int,
    lease_margin_s: float,
    location: str = "default",
    now: datetime | None = None,
    any_location: bool = True,
    ahead_s: float = 0.0,
) -> list[Claim]:
    """Claim up to `limit` due checks for a worker of `location`, oldest due first, and commit: the
    location's own rows, then (unless `any_location` is false, as for a remote agent) sites checked from
    any location. With `ahead_s`, also the checks that fall due within that many seconds (the worker
    starts each at its due time; the lease covers the wait). Returns what this worker got."""
    if limit <= 0:
        return []
    now = now or datetime.now(UTC)
    ahead_s = max(0.0, ahead_s)
    due_by = now + timedelta(seconds=ahead_s)
    located = db.session.execute(
        sa.select(SiteLocation.site_id, SiteLocation.next_check_at)
        .where(_location_due(location, now, due_by))
        .order_by(SiteLocation.next_check_at, SiteLocation.site_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    anywhere = []
    if any_location and len(located) < limit:
        # The settings come with the claimed rows: no second read of the sites checked from anywhere.
        anywhere = db.session.execute(
            sa.select(*_SETTINGS)
            .where(_site_due(now, due_by))
            .order_by(Site.next_check_at, Site.id)
            .limit(limit - len(located))
            .with_for_update(skip_locked=True)
        ).all()
    if not located and not anywhere:
        db.session.rollback()
        return []
    settings = {row.id: row for row in anywhere}
    if located:
        settings.update(
            (row.id, row)
            for row in db.session.execute(
                sa.select(*_SETTINGS).where(Site.id.in_({row.site_id for row in located}))
            )
        )

    def lease(site_id: int) -> datetime:
        # The lease is also the claim's token (finish() only acts while it still matches): microsecond-
        # precise, one per claim batch and timeout.
        return now + timedelta(seconds=ahead_s + settings[site_id].timeout_s + lease_margin_s)

    # A row of a site that lost this location or was paused meanwhile is left alone (finish or the next
    # change of the site tidies it).
    located = [
        row
        for row in located
        if row.site_id in settings
        and location in (settings[row.site_id].locations or ())
        and not settings[row.site_id].paused
    ]
    leases = {(row.site_id, True): (row.next_check_at, lease(row.site_id)) for row in located}
    leases.update({(row.id, False): (row.next_check_at, lease(row.id)) for row in anywhere})
    # One UPDATE per table and lease (sites of one timeout share it), not one per row: the rows are
    # locked by the SELECT above, and the conditions repeat the claim's for SQLite (no row locks).
    for (per_location, until), site_ids in _by_lease(leases).items():
        if per_location:
            table = SiteLocation.__table__
            db.session.execute(
                sa.update(table)
                .where(
                    table.c.site_id.in_(site_ids),
                    table.c.location == location,
                    table.c.next_check_at <= due_by,
                    sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
                )
                .values(claimed_until=until)
                .execution_options(synchronize_session=False)
            )
        else:
            table = Site.__table__
            db.session.execute(
                sa.update(table)
                .where(table.c.id.in_(site_ids), _site_due(now, due_by))
                .values(claimed_until=until, updated_at=table.c.updated_at)
                .execution_options(synchronize_session=False)
            )
    if db.session.get_bind().dialect.name == "sqlite":
        leases = _won_on_sqlite(leases, location)
    db.session.commit()
    claims = []
    for (site_id, per_location), (due_at, until) in leases.items():
        site = settings[site_id]
        claims.append(
            Claim(
                site_id=site_id,
                location=location,
                per_location=per_location,
                due_at=due_at,
                claimed_at=now,
                claimed_until=until,
                url=join_credentials(site.url, site.url_password),  # the probe alone joins it back
                timeout_s=site.timeout_s,
                accepted_status=site.accepted_status,
                keyword=site.keyword,
                keyword_absent=site.keyword_absent,
                check_interval_s=site.check_interval_s,
                tamper_enabled=site.tamper_enabled,
                primary=not per_location or (site.locations or [None])[0] == location,
            )
        )
    claims.sort(key=lambda c: (c.due_at, c.site_id))
    return claims


_SETTINGS = (
    Site.id,
    Site.next_check_at,
    Site.url,
    Site.url_password,
    Site.timeout_s,
    Site.accepted_status,
    Site.keyword,
    Site.keyword_absent,
    Site.tamper_enabled,
    Site.check_interval_s,
    Site.locations,
    Site.paused,
)


def _by_lease(leases: dict) -> dict[tuple[bool, datetime], list[int]]:
    """{(per_location, lease): [site ids]}, ids sorted (rows are updated in id order)."""
    groups: dict[tuple[bool, datetime], list[int]] = {}
    for (site_id, per_location), (_, until) in leases.items():
        groups.setdefault((per_location, until), []).append(site_id)
    return {key: sorted(ids) for key, ids in groups.items()}


def _won_on_sqlite(leases: dict, location: str) -> dict:
    """SQLite has no SKIP LOCKED: keep only the rows whose lease is ours after the conditional UPDATE."""
    located = [site_id for site_id, per_location in leases if per_location]
    anywhere = [site_id for site_id, per_location in leases if not per_location]
    current = {}
    if located:
        for site_id, until in db.session.execute(
            sa.select(SiteLocation.site_id, SiteLocation.claimed_until).where(
                SiteLocation.location == location, SiteLocation.site_id.in_(located)
            )
        ):
            current[(site_id, True)] = until
    if anywhere:
        for site_id, until in db.session.execute(
            sa.select(Site.id, Site.claimed_until).where(Site.id.in_(anywhere))
        ):
            current[(site_id, False)] = until
    return {key: value for key, value in leases.items() if current.get(key) == value[1]}


def next_slot(due_at: datetime, interval_s: int, now: datetime) -> datetime:
    """The next point on the site's grid (due_at + k * interval) after `now`: a late check does not
    shift the schedule, and a worker that fell far behind skips the missed slots instead of bursting."""
    interval = timedelta(seconds=max(1, interval_s))
    following = due_at + interval
    if following > now:
        return following
    missed = math.floor((now - due_at) / interval)
    return due_at + interval * (missed + 1)


def finish(site: Site, claim: Lease, now: datetime, row: SiteLocation | None = None) -> bool:
    """Release the claim and schedule the next check, in the caller's transaction (rows locked): the
    site's row, or for a per-location claim its `site_locations` row `row`.

    Does nothing if the claim is no longer this worker's (it expired and another worker took it: that
    worker schedules). If the API asked for a check meanwhile (next_check_at moved), that request stands;
    a site paused or given locations meanwhile stays unscheduled on that row."""
    if claim.per_location:
        if row is None or row.claimed_until != claim.claimed_until:
            return False
        row.claimed_until = None
        if row.next_check_at == claim.due_at and not site.paused:
            row.next_check_at = next_slot(claim.due_at, site.check_interval_s, now)
    else:
        if site.claimed_until != claim.claimed_until:
            return False
        site.claimed_until = None
        if not site.locations and (site.next_check_at is None or site.next_check_at == claim.due_at):
            site.next_check_at = next_slot(claim.due_at, site.check_interval_s, now)
    if site.check_requested_at is not None and site.check_requested_at <= claim.claimed_at:
        site.check_requested_at = None
    return True


def release(claims: list[Lease]) -> int:
    """Give back claims that will not be finished (shutdown): they are due again at once. Commits."""
    if not claims:
        return 0
    released = 0
    located = [c for c in claims if c.per_location]
    anywhere = [c for c in claims if not c.per_location]
    if located:
        table = SiteLocation.__table__
        result = db.session.execute(
            sa.update(table)
            .where(
                table.c.site_id == sa.bindparam("b_id"),
                table.c.location == sa.bindparam("b_location"),
                table.c.claimed_until == sa.bindparam("b_until"),
            )
            .values(claimed_until=None)
            .execution_options(synchronize_session=False),
            [{"b_id": c.site_id, "b_location": c.location, "b_until": c.claimed_until} for c in located],
        )
        released += _count(result, len(located))
    if anywhere:
        table = Site.__table__
        result = db.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"), table.c.claimed_until == sa.bindparam("b_until"))
            .values(claimed_until=None, updated_at=table.c.updated_at)
            .execution_options(synchronize_session=False),
            [{"b_id": c.site_id, "b_until": c.claimed_until} for c in anywhere],
        )
        released += _count(result, len(anywhere))
    db.session.commit()
    return released


def _count(result, default: int) -> int:
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else default


def record_claimed(items: list[tuple[Lease | None, CheckResult]]) -> dict[tuple, bool]:
    """Record results with the claims they fulfil and schedule those claims' next checks, in one
    transaction (committed). A result without a claim (an agent's, made while it could not reach the API)
    is recorded if its slot is free, and schedules nothing. Returns {(site_id, due_at, location): late}
    of the results recorded; the others were duplicates of recorded slots, or of sites gone."""
    if not items:
        return {}
    now = datetime.now(UTC)
    # Lock the sites, then their locations' rows (in id order, the same for every writer), and keep them
    # referenced: the session's identity map holds objects weakly, and finish() needs them afterwards.
    sites, votes = lock_sites({result.site_id for _, result in items})
    # Schedule first (finish does not depend on the results): record_results then writes every change
    # of the sites' rows, states and schedules, in one UPDATE per table.
    with db.session.no_autoflush:  # no UPDATE per row before record_results' own
        for lease, _ in items:
            site = sites.get(lease.site_id) if lease is not None else None
            if site is not None:
                finish(site, lease, now, votes.get((lease.site_id, lease.location)))
        checks = record_results([result for _, result in items], sites=sites, votes=votes)
    recorded = {(check.site_id, check.due_at, check.location): check.late for check in checks}
    db.session.commit()
    return recorded
