"""The outbox: what is owed to whom, and what became of it.

- `enqueue(events)` turns events into one `notifications` row per (event, channel) that should hear it,
  in the caller's transaction — the transaction of the state change that caused the events, so a state
  change and its notifications are committed together or not at all.
- `claim(...)` hands a sender a batch of due rows, oldest first and in order per channel and site (a
  row waits while an earlier one of the same pair is pending), under a lease: `SELECT ... FOR UPDATE SKIP LOCKED`
  (MariaDB 10.6+, MySQL 8; on SQLite a conditional UPDATE, one worker) then `claimed_until`/`claimed_by`,
  committed before anything is sent. It re-checks, at sending time, that the channel is enabled and
  that its owner can still see the site: a revoked share stops the news (the row fails with the reason).
- `record(outcomes)` marks each row sent, or schedules the next attempt (backoff `NOTIFY_BACKOFF_BASE_S`
  doubling: 30 s, 1, 2, 4, 8, 16, 32 min: 8 attempts over about an hour), or `failed` with the last error.
  A row is recorded only by the worker whose lease it holds.

Delivery guarantee (docs/alerts.md): at least once, and exactly once in normal operation. A worker
killed between sending and recording leaves its lease to expire; the row is then sent again (the same
`delivery_id`, so a receiver can drop the duplicate). Nothing is lost: a row leaves `pending` only when
recorded.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.alerts import channels as channel_rules
from services.alerts.messages import console_link, render
from services.extensions import db
from services.models import SEVERITY_RANK, Channel, Notification, Site, User
from services.sites import get_site, without_userinfo

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
ERROR_LENGTH = 1000


@dataclass
class Event:
    """Something that happened to a site (or a `test`), before it is addressed to channels."""

    name: str
    site: Site | None
    occurred_at: datetime
    details: dict = field(default_factory=dict)


def site_snapshot(site: Site | None) -> dict | None:
    """What a message says of the site: its name and URL as they were when the event happened (the URL
    without credentials)."""
    if site is None:
        return None
    return {"id": site.id, "name": site.name, "url": without_userinfo(site.url)}


def enqueue(events: list[Event]) -> int:
    """Address each event to the channels that hear it and add their rows (no commit). Returns the count."""
    events = [event for event in events if event.site is not None]
    if not events:
        return 0
    audience = channel_rules.Audience({event.site.id for event in events})
    rows = []
    for event in events:
        for channel in audience.channels_for(event.site.id, event.name):
            details = event.details
            if event.name == "findings.new":
                details = _findings_for(channel, details)
                if details is None:
                    continue
            rows.append(_row(channel.id, event, details))
    _insert(rows)
    return len(rows)


def enqueue_for_channel(channel: Channel, event: Event) -> None:
    """One row for one channel (reminders), in the caller's transaction."""
    _insert([_row(channel.id, event, event.details)])


def _findings_for(channel: Channel, details: dict) -> dict | None:
    """The counts at or above the channel's `min_severity`, or None when there are none."""
    floor = SEVERITY_RANK.get(channel.min_severity, SEVERITY_RANK["high"])
    counts = {
        severity: count
        for severity, count in (details.get("counts") or {}).items()
        if count and SEVERITY_RANK.get(severity, 0) >= floor
    }
    if not counts:
        return None
    return {**details, "counts": counts, "total": sum(counts.values()), "min_severity": channel.min_severity}


def _row(channel_id: int, event: Event, details: dict) -> dict:
    now = datetime.now(UTC)
    return {
        "channel_id": channel_id,
        "site_id": event.site.id if event.site is not None else None,
        "event": event.name,
        "delivery_id": str(uuid.uuid4()),
        "occurred_at": event.occurred_at,
        "payload": {"site": site_snapshot(event.site), "details": details},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _insert(rows: list[dict]) -> None:
    if rows:
        db.session.execute(sa.insert(Notification.__table__), rows)


# --- sending side --------------------------------------------------------------------------------


@dataclass
class Delivery:
    """A claimed row with everything needed to send it, so senders never touch the database."""

    notification_id: int
    delivery_id: str
    lease: datetime  # the claim's token: record() only acts while it still matches
    channel_id: int
    kind: str
    url: str
    secret: str | None
    event: str
    occurred_at: datetime
    site: dict | None
    details: dict
    title: str
    body: str
    attempt: int
    link: str | None = None  # the site's page in the console, when CLOUDEYE_PUBLIC_URL is set

    def webhook_payload(self) -> dict:
        return {
            "delivery_id": self.delivery_id,
            "event": self.event,
            "occurred_at": self.occurred_at.isoformat(),
            "site": self.site,
            "summary": self.title,
            "details": self.details,
            "link": self.link,
        }


@dataclass
class Outcome:
    delivery: Delivery
    error: str | None  # None: delivered


def _claimable(now: datetime):
    return sa.and_(
        Notification.status == "pending",
        Notification.next_attempt_at <= now,
        sa.or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
    )


def _due(now: datetime):
    earlier = sa.orm.aliased(Notification)
    return sa.and_(
        _claimable(now),
        # In order per channel and site: a down is never overtaken by its up while it is retried.
        ~sa.exists().where(
            earlier.channel_id == Notification.channel_id,
            earlier.site_id == Notification.site_id,
            earlier.status == "pending",
            earlier.id < Notification.id,
        ),
    )


def claim(limit: int, lease_s: float, worker_id: str, public_url: str | None = None) -> list[Delivery]:
    """Claim up to `limit` due rows for `worker_id` and commit. Rows whose channel was disabled or whose
    owner can no longer see the site are failed on the spot with the reason."""
    if limit <= 0:
        return []
    now = datetime.now(UTC)
    ids = db.session.scalars(
        sa.select(Notification.id)
        .where(_due(now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.rollback()
        return []
    lease = now + timedelta(seconds=lease_s)
    table = Notification.__table__
    db.session.execute(
        sa.update(table)
        # Re-checked under the row locks (and SQLite's single-writer lock): nobody claimed them meanwhile.
        .where(table.c.id.in_(ids), _claimable(now))
        .values(claimed_until=lease, claimed_by=worker_id, attempts=table.c.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    rows = db.session.scalars(
        sa.select(Notification)
        .where(
            Notification.id.in_(ids),
            Notification.claimed_by == worker_id,
            Notification.claimed_until == lease,
        )
        .order_by(Notification.id)
    ).all()
    channels = {
        c.id: c
        for c in db.session.scalars(sa.select(Channel).where(Channel.id.in_({r.channel_id for r in rows})))
    }
    owners = {
        u.id: u
        for u in db.session.scalars(
            sa.select(User).where(User.id.in_({c.owner_id for c in channels.values()}))
        )
    }
    audience = channel_rules.Audience({row.site_id for row in rows if row.site_id is not None})
    deliveries = []
    for row in rows:
        channel = channels[row.channel_id]
        owner = owners.get(channel.owner_id)
        refusal = None
        if not channel.enabled:
            refusal = "not sent: the channel is disabled"
        elif owner is None or not owner.is_active:
            refusal = "not sent: the channel's owner is deactivated"
        elif row.site_id is not None and not audience.can_see(owner.id, row.site_id):
            refusal = f"not sent: the channel's owner can no longer see site {row.site_id}"
        if refusal is not None:
            row.status, row.last_error, row.claimed_until = "failed", refusal, None
            log.info("notification %s (%s, channel %s): %s", row.id, row.event, row.channel_id, refusal)
            continue
        site = (row.payload or {}).get("site")
        details = (row.payload or {}).get("details") or {}
        title, body = render(
            row.event, row.occurred_at, site, details, channel.language, public_url, channel.name
        )
        deliveries.append(
            Delivery(
                notification_id=row.id,
                delivery_id=row.delivery_id,
                lease=lease,
                channel_id=channel.id,
                kind=channel.kind,
                url=channel.url,
                secret=channel.secret,
                event=row.event,
                occurred_at=row.occurred_at,
                site=site,
                details=details,
                title=title,
                body=body,
                attempt=row.attempts,
                link=console_link(public_url, site),
            )
        )
    db.session.commit()
    return deliveries


def backoff(attempt: int, base_s: float) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based): base, 2x, 4x ... (30 s .. 32 min)."""
    return timedelta(seconds=base_s * 2 ** (attempt - 1))


def record(outcomes: list[Outcome], worker_id: str, backoff_base_s: float) -> dict:
    """Write what became of each claimed delivery, and commit. Returns counts {sent, retry, failed, lost}
    (`lost`: the lease had expired and another worker holds the row now; it will send it)."""
    counts = {"sent": 0, "retry": 0, "failed": 0, "lost": 0}
    if not outcomes:
        return counts
    now = datetime.now(UTC)
    table = Notification.__table__
    for outcome in outcomes:
        delivery = outcome.delivery
        if outcome.error is None:
            values, verdict = {"status": "sent", "sent_at": now, "last_error": None}, "sent"
        elif delivery.attempt >= MAX_ATTEMPTS:
            values, verdict = {"status": "failed", "last_error": outcome.error[:ERROR_LENGTH]}, "failed"
        else:
            values = {
                "next_attempt_at": now + backoff(delivery.attempt, backoff_base_s),
                "last_error": outcome.error[:ERROR_LENGTH],
            }
            verdict = "retry"
        result = db.session.execute(
            sa.update(table)
            .where(
                table.c.id == delivery.notification_id,
                table.c.claimed_by == worker_id,
                table.c.claimed_until == delivery.lease,
                table.c.status == "pending",
            )
            .values(claimed_until=None, claimed_by=None, **values)
        )
        if result.rowcount == 0:
            verdict = "lost"
            log.warning(
                "notification %s: lease lost before its outcome was recorded (%s); another worker has it",
                delivery.notification_id,
                "sent" if outcome.error is None else outcome.error,
            )
        counts[verdict] += 1
        if verdict in ("retry", "failed"):
            log.warning(
                "notification %s (%s) to channel %s, attempt %d: %s%s",
                delivery.notification_id,
                delivery.event,
                delivery.channel_id,
                delivery.attempt,
                outcome.error,
                " — giving up" if verdict == "failed" else "",
            )
    db.session.commit()
    return counts


# --- the delivery log -------------------------------------------------------------------------------


def list_notifications(
    user: User, channel_id: int | None = None, site_id: int | None = None, status=None, event=None
) -> sa.Select:
    """The delivery log of the caller's own channels (admin: all), newest first. Filtering by a site the
    caller cannot see is a 404, as everywhere."""
    query = sa.select(Notification)
    if not user.is_admin:
        # The ids as a literal list (like services.sites.only_visible_sites): with the subquery MariaDB
        # read the channel's rows through a temporary table and sorted them for each page.
        own = db.session.scalars(sa.select(Channel.id).where(Channel.owner_id == user.id)).all()
        query = query.where(Notification.channel_id.in_(own))
    if channel_id is not None:
        channel_rules.get_channel(user, channel_id)
        query = query.where(Notification.channel_id == channel_id)
    if site_id is not None:
        get_site(user, site_id)
        query = query.where(Notification.site_id == site_id)
    if status:
        query = query.where(Notification.status == status)
    if event:
        query = query.where(Notification.event == event)
    return query.order_by(Notification.created_at.desc(), Notification.id.desc())


def latest_notifications(channel_ids) -> dict[int, Notification]:
    """The newest delivery-log row of each of `channel_ids` (the "last delivery" of a list of channels),
    in one query that the (channel_id, created_at) index answers without reading every row."""
    ids = sorted(set(channel_ids))
    if not ids:
        return {}
    newest = (
        sa.select(Notification.channel_id, sa.func.max(Notification.created_at).label("created_at"))
        .where(Notification.channel_id.in_(ids))
        .group_by(Notification.channel_id)
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(Notification).join(
            newest,
            sa.and_(
                Notification.channel_id == newest.c.channel_id,
                Notification.created_at == newest.c.created_at,
            ),
        )
    ).all()
    latest: dict[int, Notification] = {}
    for row in rows:  # rows created in the same instant: the later id is the newer
        if row.channel_id not in latest or row.id > latest[row.channel_id].id:
            latest[row.channel_id] = row
    return latest


def delete_old(keep_days: int, batch_size: int = 2000) -> int:
    """Delete sent and failed rows older than `keep_days` (pending ones are never deleted)."""
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    deleted = 0
    while True:
        ids = db.session.scalars(
            sa.select(Notification.id)
            .where(Notification.status.in_(("sent", "failed")), Notification.created_at < cutoff)
            .limit(batch_size)
        ).all()
        if not ids:
            return deleted
        db.session.execute(sa.delete(Notification).where(Notification.id.in_(ids)))
        db.session.commit()
        deleted += len(ids)
