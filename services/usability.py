"""Usability: recording check results (state machine, location quorum, incidents, rollups) and reading
them back.

The sync worker and the probe API call `record_results` (through `services.scheduler.record_claimed`); the
API reads through `list_checks`, `summary`, `list_incidents`. Uptime and average latency come from hourly
rollups, so a summary reads at most 720 small rows (and as many per location) whatever the history; p95
reads the last 24 hours of raw checks through the (site_id, checked_at) index.

A site checked from any location has one state machine (`_apply_state`: failures in a row against
max_retries). A site with locations has one per location (`_apply_vote`: that location's view) and its
own state is the vote of its live locations (`_decide`, rule in `services.locations.decide`): the one
place its up/down transitions, incidents and notifications are decided.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from services import locations
from services.alerts import events as alert_events
from services.alerts import maintenance as maintenance_windows
from services.cache import cache
from services.extensions import db
from services.models import (
    Incident,
    Site,
    SiteLocation,
    UsabilityCheck,
    UsabilityLocationRollup,
    UsabilityRollup,
    User,
)
from services.paging import Split
from services.sites import filter_visible, get_site, invalidate_sites, lock_in_order, visible_ids

log = logging.getLogger(__name__)
UPTIME_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@dataclass
class CheckResult:
    """What one probe found. `due_at` identifies the schedule slot it fulfils."""

    site_id: int
    due_at: datetime
    checked_at: datetime
    up: bool
    http_status: int | None = None
    response_ms: float | None = None
    failure_kind: str | None = None
    reason: str | None = None
    tls_expires_at: datetime | None = None
    location: str = locations.DEFAULT_LOCATION  # where it was made from
    late: bool = False  # sent late by an agent (it could not reach the API): recorded, never votes


# --- writing ---------------------------------------------------------------------------------------


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def lock_sites(site_ids) -> tuple[dict[int, Site], dict[tuple[int, str], SiteLocation]]:
    """Lock the sites and the location rows of those with locations, in id order (every writer does the
    same, so writers never deadlock), and read their latest committed state."""
    sites = lock_in_order(site_ids)
    located = sorted(site_id for site_id, site in sites.items() if site.locations)
    votes = {}
    if located:
        votes = {
            (row.site_id, row.location): row
            for row in db.session.scalars(
                sa.select(SiteLocation)
                .where(SiteLocation.site_id.in_(located))
                .order_by(SiteLocation.site_id, SiteLocation.location)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        }
    return sites, votes


def record_results(
    results: list[CheckResult],
    sites: dict[int, Site] | None = None,
    votes: dict[tuple[int, str], SiteLocation] | None = None,
) -> list[UsabilityCheck]:
    """Store a batch of results with their state changes, incidents, rollups and the notifications those
    cause, in the caller's transaction (the caller commits; `sites` and `votes` when it has locked them
    with `lock_sites`). A result whose slot is already recorded is skipped: (site, due_at) for a site
    checked from any location, (site, due_at, location) for a site with locations, so a slot is never
    counted twice; and so is a result from a location the site no longer names.

    A result of a site with locations that is late (an agent's, sent after the API came back, or older
    than its location's latest) is stored and counted in the rollups but does not vote: it never changes
    a decision already taken.

    A check made inside a maintenance window is stored like any other, but counted apart in the rollups
    (`checks_maintenance`, left out of uptime %), and an incident it opens is flagged `in_maintenance`."""
    if not results:
        return []
    site_ids = {r.site_id for r in results}
    if sites is None:
        sites, votes = lock_sites(site_ids)
    votes = votes or {}
    # No autoflush: the rows changed here are written together by write_changed, not one by one
    # whenever a query runs.
    with db.session.no_autoflush:
        taken = set(
            db.session.execute(
                sa.select(UsabilityCheck.site_id, UsabilityCheck.due_at, UsabilityCheck.location).where(
                    UsabilityCheck.site_id.in_(site_ids),
                    UsabilityCheck.due_at.in_({r.due_at for r in results}),
                )
            ).all()
        )
        taken_slots = {(site_id, due_at) for site_id, due_at, _ in taken}
        named = {name for site in sites.values() for name in site.locations or ()}
        live = locations.live_locations(named) if named else set()
        maintenance = maintenance_windows.coverage(site_ids)
        stored, site_counts, location_counts, changes, certificates = [], [], [], [], []
        for result in sorted(results, key=lambda r: r.checked_at):
            site = sites.get(result.site_id)
            if site is None:
                continue
            vote = None
            if site.locations:
                slot = (result.site_id, result.due_at, result.location)
                if result.location not in site.locations or slot in taken:
                    continue
                taken.add(slot)
                vote = votes.get((site.id, result.location))
                late = (
                    result.late
                    or vote is None
                    or (vote.last_due_at is not None and result.due_at <= vote.last_due_at)
                )
            else:
                if (result.site_id, result.due_at) in taken_slots:
                    continue
                late = False
            taken_slots.add((result.site_id, result.due_at))
            check = UsabilityCheck(
                site_id=result.site_id,
                due_at=result.due_at,
                location=result.location,
                late=late,
                checked_at=result.checked_at,
                status="up" if result.up else "down",
                http_status=result.http_status,
                response_ms=result.response_ms,
                failure_kind=None if result.up else (result.failure_kind or "other"),
                reason=(result.reason or "")[:500] or None,
                tls_expires_at=result.tls_expires_at,
            )
            stored.append(check)
            quiet = maintenance.active(site.id, result.checked_at)
            if not site.locations:
                change = _apply_state(site, result, quiet)
                site_counts.append((check, check.status == "up", quiet))
            else:
                location_counts.append((check, quiet))
                if late:
                    continue
                _apply_vote(site, vote, result)
                change = _decide(site, votes, live, result, quiet)
                # The site's own uptime follows its decided state: one location's failures never lower it.
                site_counts.append((check, site.state != "down", quiet))
            if change is not None:
                changes.append(change)
            if result.tls_expires_at is not None:
                certificates.append((site, result.tls_expires_at, result.checked_at))
        _insert_checks(stored)
        # The sites' and location rows' new states in one UPDATE each (the rows are locked), then what is
        # left for the unit of work: incidents, rarely a change made by the alert hooks below.
        write_changed(Site, sites.values())
        write_changed(SiteLocation, votes.values())
    db.session.flush()
    _add_to_rollups(site_counts)
    _add_to_location_rollups(location_counts)
    # State changed -> events: one call per batch, where the up/down decision (and the quorum) is made.
    alert_events.site_states_changed(changes, maintenance)
    alert_events.tls_checked(certificates, maintenance)
    invalidate_sites(site_ids)
    return stored


_CHECK_COLUMNS = (
    "site_id",
    "due_at",
    "location",
    "late",
    "checked_at",
    "status",
    "http_status",
    "response_ms",
    "failure_kind",
    "reason",
    "tls_expires_at",
)


def _insert_checks(checks: list[UsabilityCheck]) -> None:
    """One multi-row INSERT of the checks (an executemany of one cached statement; the ORM would read
    back each id, which nothing here needs). The objects stay out of the session."""
    if checks:
        db.session.execute(
            sa.insert(UsabilityCheck.__table__),
            [{name: getattr(check, name) for name in _CHECK_COLUMNS} for check in checks],
        )


def write_changed(model, objects) -> int:
    """Write the changed columns of `objects` (loaded rows of `model` that the caller has locked) with one
    `UPDATE ... SET column = CASE <key> WHEN ... END WHERE <key> IN (...)` instead of the unit of work's
    one UPDATE per row, and mark them saved. A column changed on some of the rows is written on all of
    them, each with its current value (the locked rows hold exactly what was loaded). `updated_at`
    (onupdate) is set as a flush would. Returns the rows written."""
    mapper = sa.inspect(model)
    table = mapper.local_table
    keys = [column.key for column in mapper.primary_key]
    rows, changed = [], set()
    for obj in objects:
        state = sa.inspect(obj)
        if state.session is None or not state.persistent or not state.committed_state:
            continue
        names = {
            name
            for name, original in state.committed_state.items()
            if name in table.c and name not in keys and state.dict.get(name) != original
        }
        if names:
            rows.append(obj)
            changed |= names
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect
    now = datetime.now(UTC)
    if "updated_at" in table.c:
        for obj in rows:
            obj.updated_at = now
        changed.add("updated_at")
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    processors = {name: table.c[name].type.bind_processor(dialect) for name in (*keys, *changed)}

    def bind(name: str, value):
        process = processors[name]
        return process(value) if process else value

    key_of = [tuple(bind(name, getattr(obj, name)) for name in keys) for obj in rows]
    when = " AND ".join(f"{quote(name)} = {mark}" for name in keys)
    sets, params = [], []
    for name in sorted(changed):
        values = [bind(name, getattr(obj, name)) for obj in rows]
        if all(value == values[0] for value in values):
            sets.append(f"{quote(name)} = {mark}")
            params.append(values[0])
            continue
        cases = []
        for key, value in zip(key_of, values, strict=True):
            cases.append(f"WHEN {when} THEN {mark}")
            params.extend((*key, value))
        sets.append(f"{quote(name)} = CASE {' '.join(cases)} ELSE {quote(name)} END")
    if len(keys) == 1:
        where = f"{quote(keys[0])} IN ({', '.join(mark for _ in rows)})"
    else:  # (a, b) IN ((..), (..)) needs a subquery on SQLite
        where = " OR ".join(f"({when})" for _ in rows)
    for key in key_of:
        params.extend(key)
    db.session.connection().exec_driver_sql(
        f"UPDATE {quote(table.name)} SET {', '.join(sets)} WHERE {where}", tuple(params)
    )
    for obj in rows:
        for name in changed:
            set_committed_value(obj, name, getattr(obj, name))
    return len(rows)


def _apply_state(site: Site, result: CheckResult, in_maintenance: bool) -> alert_events.StateChange | None:
    """up -> up; failures -> pending until more than max_retries in a row, then down (incident opens).
    Returns the up/down transition this result made, if any."""
    site.last_checked_at = result.checked_at
    if result.tls_expires_at is not None:
        site.tls_expires_at = result.tls_expires_at
    previous = site.state
    if result.up:
        site.consecutive_failures = 0
        site.state = "up"
        if previous == "down":
            incident = _close_incident(site.id, result.checked_at)
            return alert_events.StateChange(site, "up", result.checked_at, incident)
        return None
    site.consecutive_failures += 1
    if site.consecutive_failures > site.max_retries:
        site.state = "down"
        if previous != "down":
            return _open_incident(site, result, _cause(result), in_maintenance)
    else:
        site.state = "pending"
    return None


def _cause(result: CheckResult) -> str:
    return f"{result.failure_kind or 'other'}: {result.reason or 'check failed'}"[:500]


def _apply_vote(site: Site, vote: SiteLocation, result: CheckResult) -> None:
    """The location's own state machine (its view of the site): the same rule as `_apply_state`."""
    vote.last_checked_at = result.checked_at
    vote.last_due_at = result.due_at
    if site.last_checked_at is None or result.checked_at > site.last_checked_at:
        site.last_checked_at = result.checked_at
    if result.tls_expires_at is not None:
        site.tls_expires_at = result.tls_expires_at
    if result.up:
        vote.consecutive_failures = 0
        vote.state = "up"
        vote.last_cause = None
        return
    vote.consecutive_failures += 1
    vote.state = "down" if vote.consecutive_failures > site.max_retries else "pending"
    vote.last_cause = _cause(result)


def _decide(
    site: Site, votes: dict, live: set[str], result: CheckResult, in_maintenance: bool
) -> alert_events.StateChange | None:
    """The site's state from its live locations' views (the quorum); returns the up/down transition."""
    views = {name: votes[(site.id, name)].state for name in site.locations if (site.id, name) in votes}
    decision = locations.decide(views, live, site.effective_quorum, site.state)
    previous = site.state
    if decision.state is None or decision.state == previous:
        return None
    site.state = decision.state
    if decision.state == "down":
        down = "; ".join(f"{name}: {votes[(site.id, name)].last_cause}" for name in decision.down)
        cause = (
            f"down from {len(decision.down)} of {decision.live} live locations "
            f"(quorum {decision.quorum}) - {down}"
        )[:500]
        return _open_incident(site, result, cause, in_maintenance)
    if previous == "down":
        incident = _close_incident(site.id, result.checked_at)
        return alert_events.StateChange(site, "up", result.checked_at, incident)
    return None


def _open_incident(
    site: Site, result: CheckResult, cause: str, in_maintenance: bool
) -> alert_events.StateChange:
    """The site has just gone down: its incident, opened at this check, and the change to announce."""
    incident = Incident(
        site_id=site.id,
        started_at=result.checked_at,
        cause=cause,
        location=result.location,
        in_maintenance=in_maintenance,
    )
    db.session.add(incident)
    log.warning("site %s is down: %s", site.id, cause)
    return alert_events.StateChange(site, "down", result.checked_at, incident)


def _close_incident(site_id: int, ended_at: datetime) -> Incident | None:
    # An incident opened earlier in this batch is not flushed yet (no autoflush in record_results).
    opened = [
        obj
        for obj in db.session.new
        if isinstance(obj, Incident) and obj.site_id == site_id and obj.ended_at is None
    ]
    incident = (
        opened[-1]
        if opened
        else db.session.scalar(
            sa.select(Incident)
            .where(Incident.site_id == site_id, Incident.ended_at.is_(None))
            .order_by(Incident.started_at.desc())
            .limit(1)
        )
    )
    if incident is not None:
        incident.ended_at = ended_at
        log.info("site %s is up again after %.0f s", site_id, incident.duration_s or 0)
    return incident


def _add_to_rollups(counts: list[tuple[UsabilityCheck, bool, bool]]) -> None:
    """Add (check, counts as up, in maintenance) to the site's hourly and daily buckets with one upsert
    per bucket. A check made in a maintenance window counts only in `checks_maintenance`: uptime % is
    checks_up / checks_total."""
    buckets: dict[tuple, dict] = {}
    for check, counts_up, quiet in counts:
        for period, start in (("hour", hour_start(check.checked_at)), ("day", day_start(check.checked_at))):
            row = buckets.setdefault(
                (check.site_id, period, start),
                {
                    "site_id": check.site_id,
                    "period": period,
                    "bucket_start": start,
                    "checks_total": 0,
                    "checks_up": 0,
                    "latency_sum_ms": 0.0,
                    "latency_count": 0,
                    "latency_max_ms": 0.0,
                    "checks_maintenance": 0,
                },
            )
            if quiet:
                row["checks_maintenance"] += 1
                continue
            row["checks_total"] += 1
            if counts_up:
                row["checks_up"] += 1
            if check.status == "up" and check.response_ms is not None:
                row["latency_sum_ms"] += check.response_ms
                row["latency_count"] += 1
                row["latency_max_ms"] = max(row["latency_max_ms"], check.response_ms)
    if not buckets:
        return
    _upsert_counters(
        UsabilityRollup.__table__,
        list(buckets.values()),
        ["site_id", "period", "bucket_start"],
        greatest=("latency_max_ms",),
    )


def _add_to_location_rollups(counts: list[tuple[UsabilityCheck, bool]]) -> None:
    """The checks of sites with locations, by location and hour: each location's own uptime and latency."""
    buckets: dict[tuple, dict] = {}
    for check, quiet in counts:
        start = hour_start(check.checked_at)
        row = buckets.setdefault(
            (check.site_id, check.location, start),
            {
                "site_id": check.site_id,
                "location": check.location,
                "bucket_start": start,
                "checks_total": 0,
                "checks_up": 0,
                "latency_sum_ms": 0.0,
                "latency_count": 0,
                "checks_maintenance": 0,
            },
        )
        if quiet:
            row["checks_maintenance"] += 1
            continue
        row["checks_total"] += 1
        if check.status == "up":
            row["checks_up"] += 1
            if check.response_ms is not None:
                row["latency_sum_ms"] += check.response_ms
                row["latency_count"] += 1
    if buckets:
        _upsert_counters(
            UsabilityLocationRollup.__table__, list(buckets.values()), ["site_id", "location", "bucket_start"]
        )


def _upsert_counters(table: sa.Table, rows: list[dict], key: list[str], greatest: tuple = ()) -> None:
    """One INSERT of `rows` that adds their counters to the rows already there (`greatest`: kept max):
    an executemany of one statement, compiled once (PyMySQL sends it as one multi-row INSERT), rows in
    key order."""
    counters = [name for name in rows[0] if name not in key]
    if db.engine.dialect.name == "mysql":
        stmt = mysql.insert(table)
        new = stmt.inserted
        stmt = stmt.on_duplicate_key_update(
            **{
                name: sa.func.greatest(table.c[name], new[name])
                if name in greatest
                else table.c[name] + new[name]
                for name in counters
            }
        )
    else:
        stmt = sqlite.insert(table)
        new = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_={
                name: sa.func.max(table.c[name], new[name]) if name in greatest else table.c[name] + new[name]
                for name in counters
            },
        )
    db.session.execute(stmt, sorted(rows, key=lambda row: tuple(row[name] for name in key)))


def delete_old_checks(retention_days: int, batch_size: int = 5000) -> int:
    """Delete raw checks older than the retention in small batches (short locks); returns the count."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    deleted = 0
    while True:
        ids = db.session.scalars(
            sa.select(UsabilityCheck.id).where(UsabilityCheck.checked_at < cutoff).limit(batch_size)
        ).all()
        if not ids:
            return deleted
        db.session.execute(sa.delete(UsabilityCheck).where(UsabilityCheck.id.in_(ids)))
        db.session.commit()
        deleted += len(ids)


def delete_old_hourly_rollups(keep_days: int, sites_per_statement: int = 100) -> int:
    """Delete hourly rollups older than `keep_days` (never fewer than the 30 days a summary reads); returns
    the count. Each DELETE covers a slice of sites, so it is a few primary-key ranges, not a table scan."""
    cutoff = datetime.now(UTC) - max(timedelta(days=keep_days), UPTIME_WINDOWS["30d"] + timedelta(days=1))
    site_ids = db.session.scalars(sa.select(Site.id).order_by(Site.id)).all()
    deleted = 0
    for start in range(0, len(site_ids), sites_per_statement):
        result = db.session.execute(
            sa.delete(UsabilityRollup).where(
                UsabilityRollup.site_id.in_(site_ids[start : start + sites_per_statement]),
                UsabilityRollup.period == "hour",
                UsabilityRollup.bucket_start < cutoff,
            )
        )
        located = db.session.execute(
            sa.delete(UsabilityLocationRollup).where(
                UsabilityLocationRollup.site_id.in_(site_ids[start : start + sites_per_statement]),
                UsabilityLocationRollup.bucket_start < cutoff,
            )
        )
        db.session.commit()
        deleted += result.rowcount + located.rowcount
    return deleted


# --- reading ---------------------------------------------------------------------------------------


def list_checks(
    user: User, site_id=None, status=None, since=None, until=None, location: str | None = None
) -> sa.Select:
    query = sa.select(UsabilityCheck)
    query = filter_visible(query, UsabilityCheck.site_id, user, site_id)
    if status:
        query = query.where(UsabilityCheck.status == status)
    if location:
        query = query.where(UsabilityCheck.location == location)
    if since:
        query = query.where(UsabilityCheck.checked_at >= since)
    if until:
        query = query.where(UsabilityCheck.checked_at < until)
    return query.order_by(UsabilityCheck.checked_at.desc(), UsabilityCheck.id.desc())


def checks_by_site(user: User, site_id=None) -> Split | None:
    """paginate's `split` for list_checks: an operator's sites, each read off (site_id, checked_at)."""
    if site_id is not None:
        return None
    ids = visible_ids(user)
    return None if ids is None else Split(UsabilityCheck.site_id, ids, "ix_usability_checks_site_time")


def list_incidents(user: User, site_id=None, open_only: bool | None = None) -> sa.Select:
    query = sa.select(Incident)
    query = filter_visible(query, Incident.site_id, user, site_id)
    if open_only is True:
        query = query.where(Incident.ended_at.is_(None))
    elif open_only is False:
        query = query.where(Incident.ended_at.is_not(None))
    return query.order_by(Incident.started_at.desc(), Incident.id.desc())


def summary(user: User, site_id: int) -> dict:
    key = cache.key("summary", site_id)
    cached, version = cache.get_versioned(key)  # the version before any of the rows are read
    site = get_site(user, site_id)  # access check on every call, even when cached
    if cached is None:
        cached = _compute_summary(site)
        cache.set_versioned(key, cached, version)
    return _with_liveness(cached, site)


def _with_liveness(value: dict, site: Site) -> dict:
    """Which of the site's locations are alive now, and whether its state is held for want of them: read
    on every call (heartbeats change without any write that would invalidate the cached summary)."""
    value = {**value, "state_held_reason": None}
    if not site.locations:
        return value
    live = locations.live_locations(site.locations)
    value["locations"] = {
        name: {**figures, "alive": name in live} for name, figures in value["locations"].items()
    }
    value["state_held_reason"] = locations.held_reason(
        len(live & set(site.locations)), len(site.locations), site.effective_quorum
    )
    return value


def _compute_summary(site: Site) -> dict:
    now = datetime.now(UTC)
    uptime, latency_sum, latency_count = _uptime_windows(site.id, now)
    open_incident = db.session.scalar(
        sa.select(Incident)
        .where(Incident.site_id == site.id, Incident.ended_at.is_(None))
        .order_by(Incident.started_at.desc())
        .limit(1)
    )
    return {
        "site_id": site.id,
        "state": site.state,
        "quorum": site.effective_quorum,
        "locations": _location_figures(site, now),
        "uptime": uptime,
        "latency_ms": {
            "avg": round(latency_sum / latency_count, 2) if latency_count else None,
            "p95": _p95_last_day(site.id, now),
        },
        "last_checked_at": _iso(site.last_checked_at),
        "tls_expires_at": _iso(site.tls_expires_at),
        "open_incident": None
        if open_incident is None
        else {
            "id": open_incident.id,
            "started_at": _iso(open_incident.started_at),
            "cause": open_incident.cause,
        },
    }


def _next_day(moment: datetime) -> datetime:
    start = day_start(moment)
    return start if start == moment else start + timedelta(days=1)


def _uptime_windows(site_id: int, now: datetime) -> tuple[dict, float, int]:
    """Uptime % over each of UPTIME_WINDOWS, and the latency sum and count of the last 24 hours.

    Whole days come from the daily rollups and only the ragged ends from the hourly ones (the hours
    before each window's first midnight, and today's): about 120 rows for a site with months of history
    instead of 720 hourly ones, so a summary costs about the same with a day or a year of checks."""
    today = day_start(now)
    starts = {name: hour_start(now - span) for name, span in UPTIME_WINDOWS.items()}
    hourly_spans = [(start, min(_next_day(start), today)) for start in starts.values()] + [(today, None)]
    columns = (
        UsabilityRollup.bucket_start,
        UsabilityRollup.checks_total,
        UsabilityRollup.checks_up,
        UsabilityRollup.latency_sum_ms,
        UsabilityRollup.latency_count,
    )
    in_spans = sa.or_(
        *(
            sa.and_(UsabilityRollup.bucket_start >= lo, UsabilityRollup.bucket_start < hi)
            if hi is not None
            else UsabilityRollup.bucket_start >= lo
            for lo, hi in hourly_spans
            if hi is None or lo < hi
        )
    )
    hours = db.session.execute(
        sa.select(*columns).where(
            UsabilityRollup.site_id == site_id, UsabilityRollup.period == "hour", in_spans
        )
    ).all()
    first_day = min(_next_day(start) for start in starts.values())
    days = db.session.execute(
        sa.select(*columns).where(
            UsabilityRollup.site_id == site_id,
            UsabilityRollup.period == "day",
            UsabilityRollup.bucket_start >= first_day,
            UsabilityRollup.bucket_start < today,
        )
    ).all()
    hours = list({row.bucket_start: row for row in hours}.values())  # the spans may overlap
    uptime = {}
    for name, start in starts.items():
        whole_from = min(_next_day(start), today)
        rows = [
            r
            for r in hours
            if r.bucket_start >= start and (r.bucket_start < whole_from or r.bucket_start >= today)
        ]
        rows += [r for r in days if r.bucket_start >= whole_from]
        total = sum(r.checks_total for r in rows)
        up = sum(r.checks_up for r in rows)
        uptime[name] = round(100.0 * up / total, 3) if total else None
    day_rows = [r for r in hours if r.bucket_start >= starts["24h"]]
    return uptime, sum(r.latency_sum_ms for r in day_rows), sum(r.latency_count for r in day_rows)


def _location_figures(site: Site, now: datetime) -> dict:
    """{location: {state, uptime, latency_ms, last_checked_at}} of a site with locations, from its
    site_locations rows and its per-location hourly rollups (720 rows a location at most)."""
    if not site.locations:
        return {}
    views = {
        row.location: row
        for row in db.session.scalars(sa.select(SiteLocation).where(SiteLocation.site_id == site.id))
    }
    rows = db.session.execute(
        sa.select(
            UsabilityLocationRollup.location,
            UsabilityLocationRollup.bucket_start,
            UsabilityLocationRollup.checks_total,
            UsabilityLocationRollup.checks_up,
            UsabilityLocationRollup.latency_sum_ms,
            UsabilityLocationRollup.latency_count,
        ).where(
            UsabilityLocationRollup.site_id == site.id,
            UsabilityLocationRollup.bucket_start >= hour_start(now - UPTIME_WINDOWS["30d"]),
        )
    ).all()
    figures = {}
    for name in site.locations:
        own = [row for row in rows if row.location == name]
        uptime = {}
        for window, span in UPTIME_WINDOWS.items():
            start = hour_start(now - span)
            total = sum(r.checks_total for r in own if r.bucket_start >= start)
            up = sum(r.checks_up for r in own if r.bucket_start >= start)
            uptime[window] = round(100.0 * up / total, 3) if total else None
        day = [r for r in own if r.bucket_start >= hour_start(now - UPTIME_WINDOWS["24h"])]
        latency_count = sum(r.latency_count for r in day)
        view = views.get(name)
        figures[name] = {
            "state": view.state if view is not None else "unknown",
            "uptime": uptime,
            "latency_ms": {
                "avg": round(sum(r.latency_sum_ms for r in day) / latency_count, 2) if latency_count else None
            },
            "last_checked_at": _iso(view.last_checked_at) if view is not None else None,
        }
    return figures


def _p95_last_day(site_id: int, now: datetime) -> float | None:
    window = (
        UsabilityCheck.site_id == site_id,
        UsabilityCheck.checked_at >= now - UPTIME_WINDOWS["24h"],
        UsabilityCheck.status == "up",
        UsabilityCheck.response_ms.is_not(None),
    )
    count = db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityCheck).where(*window))
    if not count:
        return None
    offset = int(0.95 * (count - 1) + 0.5)  # nearest-rank
    value = db.session.scalar(
        sa.select(UsabilityCheck.response_ms)
        .where(*window)
        .order_by(UsabilityCheck.response_ms)
        .offset(offset)
        .limit(1)
    )
    return round(value, 2) if value is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --- charts: series for the console and the public status pages ------------------------------------

DAILY_DAYS = 90
SERIES_WINDOWS = ("24h", "7d", "30d")


def daily_uptime(site_ids: list[int], days: int = DAILY_DAYS, now: datetime | None = None) -> dict:
    """{site_id: [uptime % or None] * days}, oldest day first, today last, from the daily rollups (one
    query for every site; the caller has checked that the sites may be shown)."""
    today = day_start(now or datetime.now(UTC))
    first = today - timedelta(days=days - 1)
    result = {site_id: [None] * days for site_id in site_ids}
    if not site_ids:
        return result
    rows = db.session.execute(
        sa.select(
            UsabilityRollup.site_id,
            UsabilityRollup.bucket_start,
            UsabilityRollup.checks_total,
            UsabilityRollup.checks_up,
        ).where(
            UsabilityRollup.site_id.in_(site_ids),
            UsabilityRollup.period == "day",
            UsabilityRollup.bucket_start >= first,
        )
    ).all()
    for row in rows:
        index = (row.bucket_start - first).days
        if 0 <= index < days and row.checks_total:
            result[row.site_id][index] = round(100.0 * row.checks_up / row.checks_total, 3)
    return result


def hourly_latency(site_ids: list[int], hours: int = 24, now: datetime | None = None) -> dict:
    """{site_id: [average response ms or None] * hours}, oldest hour first (sparklines; one query)."""
    current = hour_start(now or datetime.now(UTC))
    first = current - timedelta(hours=hours - 1)
    result = {site_id: [None] * hours for site_id in site_ids}
    if not site_ids:
        return result
    rows = db.session.execute(
        sa.select(
            UsabilityRollup.site_id,
            UsabilityRollup.bucket_start,
            UsabilityRollup.latency_sum_ms,
            UsabilityRollup.latency_count,
        ).where(
            UsabilityRollup.site_id.in_(site_ids),
            UsabilityRollup.period == "hour",
            UsabilityRollup.bucket_start >= first,
        )
    ).all()
    for row in rows:
        index = int((row.bucket_start - first).total_seconds() // 3600)
        if 0 <= index < hours and row.latency_count:
            result[row.site_id][index] = round(row.latency_sum_ms / row.latency_count, 1)
    return result


def response_series(user: User, site_id: int, window: str) -> dict:
    """The response-time chart of one site: raw checks over 24h, hourly averages over 7d and 30d.
    Points are [unix seconds, response ms or None (down), share of checks up (0..1)]; `from` and `to`
    (unix seconds) bound the window."""
    if window not in SERIES_WINDOWS:
        raise ValueError(f"window must be one of {SERIES_WINDOWS}")
    site = get_site(user, site_id)
    now = datetime.now(UTC)
    if window == "24h":
        rows = db.session.execute(
            sa.select(UsabilityCheck.checked_at, UsabilityCheck.status, UsabilityCheck.response_ms)
            .where(
                UsabilityCheck.site_id == site.id, UsabilityCheck.checked_at >= now - UPTIME_WINDOWS["24h"]
            )
            .order_by(UsabilityCheck.checked_at)
        ).all()
        points = [
            [
                int(row.checked_at.timestamp()),
                round(row.response_ms, 1) if row.status == "up" and row.response_ms is not None else None,
                1.0 if row.status == "up" else 0.0,
            ]
            for row in rows
        ]
    else:
        rows = db.session.execute(
            sa.select(UsabilityRollup)
            .where(
                UsabilityRollup.site_id == site.id,
                UsabilityRollup.period == "hour",
                UsabilityRollup.bucket_start >= hour_start(now - UPTIME_WINDOWS[window]),
            )
            .order_by(UsabilityRollup.bucket_start)
        ).scalars()
        points = [
            [
                int(row.bucket_start.timestamp()),
                round(row.latency_sum_ms / row.latency_count, 1) if row.latency_count else None,
                round(row.checks_up / row.checks_total, 4) if row.checks_total else None,
            ]
            for row in rows
        ]
    return {
        "site_id": site.id,
        "window": window,
        "from": int((now - UPTIME_WINDOWS[window]).timestamp()),
        "to": int(now.timestamp()),
        "points": points,
    }
