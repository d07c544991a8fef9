"""What happened, decided where the state changes and written to the outbox in that same transaction.

The places that decide call one function each (no commit here: the caller's transaction holds the state
change and its notifications together):

- `site_states_changed(changes)`: the site state machine (`services.usability.record_results`) after
  a batch of checks, with every up/down transition. site.down when a site turns down; site.up when it
  recovers from an announced down (with the downtime); site.flapping when the transition is the 4th
  within 30 minutes — then nothing more about the site until it has been stable 10 minutes (`tick`);
- `tls_checked(items)`: each check that saw a certificate; tls.expiring once per threshold crossed
  (14, 7, 3, 1 days left), again for a new certificate;
- `tamper_opened(site, event)`: `services.tamper.check_page` when an event opens;
- `findings_new(site, counts, source)`: an import or a built-in findings refresh (`services.imports`),
  one message with the counts of new and reopened findings by severity.

Inside a maintenance window (`services.alerts.maintenance`) nothing is emitted for the site. `tick(now)`
runs periodically in sync, on one replica at a time: it ends flapping for sites stable 10 minutes
(announcing the state they settled in), announces a down that began in a maintenance window or while
flapping once it is over and the site is still down, and re-sends site.down to channels that asked for
reminders (`remind_every_min`).
"""

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.alerts import maintenance as windows
from services.alerts.channels import Audience
from services.alerts.outbox import Event, enqueue, enqueue_for_channel
from services.extensions import db
from services.locks import lock_name, mysql_named_lock
from services.models import Channel, Incident, Notification, Site, User
from services.sites import lock_in_order

log = logging.getLogger(__name__)

FLAP_WINDOW = timedelta(minutes=30)
FLAP_CHANGES = 4
FLAP_SETTLE = timedelta(minutes=10)
TLS_THRESHOLDS_DAYS = (14, 7, 3, 1)
DIFF_EXCERPT_LINES = 20
DIFF_EXCERPT_CHARS = 1500


@dataclass
class StateChange:
    """An up/down transition of a site: `incident` is the one it opened (down) or closed (up)."""

    site: Site
    current: str  # "down" or "up"
    at: datetime
    incident: Incident | None


# --- decisions at the state change --------------------------------------------------------------------


def site_states_changed(changes: list[StateChange], maintenance: windows.Coverage | None = None) -> None:
    """The hook of the site state machine: every up/down transition of a batch, once the incidents are
    flushed. Decides site.down / site.up / site.flapping and enqueues them."""
    if not changes:
        return
    site_ids = {change.site.id for change in changes}
    maintenance = maintenance or windows.coverage(site_ids)
    history = _change_times(site_ids, min(change.at for change in changes) - FLAP_WINDOW)
    events = []
    for change in changes:
        site = change.site
        if site.flapping_since is not None:
            continue  # held back until the site is stable (tick)
        recent = [moment for moment in history[site.id] if change.at - FLAP_WINDOW <= moment <= change.at]
        if len(recent) >= FLAP_CHANGES:
            site.flapping_since = change.at
            log.warning("site %s is flapping: %d state changes within %s", site.id, len(recent), FLAP_WINDOW)
            if not maintenance.active(site.id, change.at):
                events.append(
                    Event(
                        "site.flapping",
                        site,
                        change.at,
                        {
                            "changes": len(recent),
                            "window_min": int(FLAP_WINDOW.total_seconds() // 60),
                            "settle_min": int(FLAP_SETTLE.total_seconds() // 60),
                            "state": change.current,
                        },
                    )
                )
            continue
        if maintenance.active(site.id, change.at):
            continue
        if change.current == "down" and change.incident is not None:
            change.incident.announced_at = change.at
            events.append(_down_event(site, change.incident, change.at))
        elif change.current == "up" and change.incident is not None and change.incident.announced_at:
            events.append(_up_event(site, change.incident, change.at))
    enqueue(events)


def _change_times(site_ids, since: datetime) -> dict[int, list[datetime]]:
    """When each site turned down or up since `since` (incident starts and ends)."""
    times: dict[int, list[datetime]] = defaultdict(list)
    rows = db.session.execute(
        sa.select(Incident.site_id, Incident.started_at, Incident.ended_at).where(
            Incident.site_id.in_(sorted(site_ids)),
            sa.or_(Incident.started_at >= since, Incident.ended_at >= since),
        )
    ).all()
    for site_id, started_at, ended_at in rows:
        for moment in (started_at, ended_at):
            if moment is not None and moment >= since:
                times[site_id].append(moment)
    return times


def _down_event(site: Site, incident: Incident, at: datetime, **extra) -> Event:
    return Event(
        "site.down",
        site,
        at,
        {
            "since": incident.started_at.isoformat(),
            "cause": incident.cause,
            "incident_id": incident.id,
            **extra,
        },
    )


def _up_event(site: Site, incident: Incident, at: datetime, **extra) -> Event:
    return Event(
        "site.up",
        site,
        at,
        {
            "down_since": incident.started_at.isoformat(),
            "up_at": at.isoformat(),
            "downtime_s": round((at - incident.started_at).total_seconds(), 1),
            "incident_id": incident.id,
            **extra,
        },
    )


def tls_checked(
    items: list[tuple[Site, datetime, datetime]], maintenance: windows.Coverage | None = None
) -> None:
    """(site, certificate expiry, checked at) of each check that saw a certificate."""
    if not items:
        return
    maintenance = maintenance or windows.coverage({site.id for site, _, _ in items})
    events = []
    for site, expires_at, at in items:
        days_left = (expires_at - at).total_seconds() / 86400
        threshold = min((days for days in TLS_THRESHOLDS_DAYS if days_left <= days), default=None)
        if threshold == site.tls_alert_days:
            continue
        site.tls_alert_days = threshold  # None again once renewed
        if threshold is None or maintenance.active(site.id, at):
            continue
        events.append(
            Event(
                "tls.expiring",
                site,
                at,
                {
                    "expires_at": expires_at.isoformat(),
                    "days_left": max(0, math.floor(days_left)),
                    "threshold_days": threshold,
                },
            )
        )
    enqueue(events)


def tamper_opened(site: Site, event, at: datetime) -> None:
    if windows.in_maintenance(site.id, at):
        return
    lines = (event.diff or "").splitlines()
    excerpt = "\n".join(lines[:DIFF_EXCERPT_LINES])[:DIFF_EXCERPT_CHARS]
    enqueue(
        [
            Event(
                "tamper.opened",
                site,
                at,
                {
                    "tamper_event_id": event.id,
                    "severity": event.severity,
                    "change_ratio": round(event.change_ratio or 0.0, 4),
                    "forbidden_found": list(event.forbidden_found or []),
                    "new_domains": list(event.new_domains or []),
                    "diff_excerpt": excerpt,
                },
            )
        ]
    )


def findings_new(site: Site, counts: dict[str, int], source: str, import_id: int | None = None) -> None:
    """New and reopened findings of one import or refresh, by severity (channels keep those at or above
    their min_severity)."""
    counts = {severity: count for severity, count in counts.items() if count}
    if not counts:
        return
    at = datetime.now(UTC)
    if windows.in_maintenance(site.id, at):
        return
    enqueue([Event("findings.new", site, at, {"counts": counts, "source": source, "import_id": import_id})])


# --- the periodic part ----------------------------------------------------------------------------


def tick(now: datetime | None = None) -> dict | None:
    """Settle flapping sites, announce downs held back by maintenance or flapping, send reminders; one
    transaction, committed. Runs on one replica at a time (a MySQL named lock; None when another replica
    holds it)."""
    now = now or datetime.now(UTC)
    engine = db.session.get_bind()
    if engine.dialect.name != "mysql":
        return _tick(now)
    with mysql_named_lock(engine, lock_name("cloudeye:alerts-tick:", engine, "tick")) as acquired:
        return _tick(now) if acquired else None


def _tick(now: datetime) -> dict:
    counts = {"settled": 0, "announced": 0, "reminders": 0}
    try:
        _settle_flapping(now, counts)
        _announce_held_back(now, counts)
        _remind(now, counts)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return counts


def _open_incidents(site_ids) -> dict[int, Incident]:
    if not site_ids:
        return {}
    rows = db.session.scalars(
        sa.select(Incident)
        .where(Incident.site_id.in_(sorted(site_ids)), Incident.ended_at.is_(None))
        .order_by(Incident.started_at)
        .execution_options(populate_existing=True)
    ).all()
    return {incident.site_id: incident for incident in rows}  # the latest one per site


def _settle_flapping(now: datetime, counts: dict) -> None:
    candidates = db.session.scalars(sa.select(Site.id).where(Site.flapping_since.is_not(None))).all()
    sites = lock_in_order(candidates)
    flapping = [site for site in sites.values() if site.flapping_since is not None]
    if not flapping:
        return
    history = _change_times({site.id for site in flapping}, now - FLAP_WINDOW - FLAP_SETTLE)
    maintenance = windows.coverage({site.id for site in flapping})
    incidents = _open_incidents({site.id for site in flapping})
    events = []
    for site in flapping:
        last_change = max(history[site.id], default=site.flapping_since)
        if last_change > now - FLAP_SETTLE:
            continue
        site.flapping_since = None
        counts["settled"] += 1
        log.info("site %s is stable again (%s since %s)", site.id, site.state, last_change.isoformat())
        if maintenance.active(site.id, now):
            continue  # a down stays unannounced until the window is over
        incident = incidents.get(site.id)
        if site.state == "down" and incident is not None:
            incident.announced_at = now
            events.append(_down_event(site, incident, now, after_flapping=True))
        elif site.state == "up":
            events.append(
                Event("site.up", site, now, {"up_since": last_change.isoformat(), "after_flapping": True})
            )
    enqueue(events)


def _announce_held_back(now: datetime, counts: dict) -> None:
    """A site still down whose down was never announced (it began in a maintenance window, or while the
    site was flapping) is announced once the window is over."""
    candidates = db.session.scalars(
        sa.select(Incident.site_id)
        .join(Site, Site.id == Incident.site_id)
        .where(Incident.ended_at.is_(None), Incident.announced_at.is_(None), Site.flapping_since.is_(None))
    ).all()
    if not candidates:
        return
    maintenance = windows.coverage(candidates)
    due = [site_id for site_id in set(candidates) if not maintenance.active(site_id, now)]
    sites = lock_in_order(due)
    incidents = _open_incidents(sites)
    events = []
    for site_id, site in sites.items():
        incident = incidents.get(site_id)
        if (
            incident is None
            or incident.announced_at is not None
            or site.flapping_since
            or site.state != "down"
        ):
            continue
        incident.announced_at = now
        events.append(_down_event(site, incident, now, after_maintenance=incident.in_maintenance))
        counts["announced"] += 1
    enqueue(events)


def _remind(now: datetime, counts: dict) -> None:
    reminding = db.session.scalars(
        sa.select(Channel)
        .join(User, User.id == Channel.owner_id)
        .where(Channel.enabled.is_(True), Channel.remind_every_min > 0, User.is_active.is_(True))
    ).all()
    reminding = {channel.id: channel for channel in reminding if "site.down" in (channel.events or ())}
    if not reminding:
        return
    incidents = {
        incident.site_id: incident
        for incident in db.session.scalars(
            sa.select(Incident)
            .join(Site, Site.id == Incident.site_id)
            .where(
                Incident.ended_at.is_(None),
                Incident.announced_at.is_not(None),
                Site.state == "down",
                Site.flapping_since.is_(None),
            )
            .order_by(Incident.started_at)
        )
    }
    if not incidents:
        return
    maintenance = windows.coverage(incidents)
    audience = Audience(incidents)
    last_sent = {
        (channel_id, site_id): latest
        for channel_id, site_id, latest in db.session.execute(
            sa.select(Notification.channel_id, Notification.site_id, sa.func.max(Notification.occurred_at))
            .where(
                Notification.event == "site.down",
                Notification.channel_id.in_(list(reminding)),
                Notification.site_id.in_(list(incidents)),
            )
            .group_by(Notification.channel_id, Notification.site_id)
        )
    }
    for site_id, incident in incidents.items():
        if maintenance.active(site_id, now):
            continue
        for channel in audience.channels_for(site_id, "site.down"):
            if channel.id not in reminding:
                continue
            since = last_sent.get((channel.id, site_id)) or incident.announced_at
            if since > now - timedelta(minutes=channel.remind_every_min):
                continue
            site = db.session.get(Site, site_id)
            enqueue_for_channel(channel, _down_event(site, incident, now, reminder=True))
            counts["reminders"] += 1
