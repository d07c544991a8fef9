"""Channels: who hears what. A channel belongs to the user who created it (any role) and only ever
carries news about sites that user can see *at sending time* (`Audience`, used when events are
addressed and again when they are sent).

Body rules (docs/alerts.md, "Channels"): `name`; `url` — http(s) for cloudeye's signed webhook (a
target `ALLOW_PRIVATE_TARGETS` allows), any other scheme must be one Apprise can use (its own parser
says why not); `events` (default all); `site_ids` (null: every site the owner can see; else sites the
owner can see now); `min_severity` (findings.new); `remind_every_min`; `enabled`; `language` (en,
zh-CN); `secret` (webhooks only, write-only). The URL is masked in every answer and log line.
"""

import logging
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from services import ratelimit, transports
from services.alerts.messages import render
from services.errors import Invalid, NotFound
from services.extensions import db
from services.models import (
    EVENTS,
    LANGUAGES,
    SEVERITIES,
    Channel,
    ChannelSite,
    Notification,
    Site,
    SiteMember,
    User,
)
from services.sites import check_target, visible_site_ids

log = logging.getLogger(__name__)
TEXT_LENGTHS = {"name": (1, 200), "url": (1, 2048), "secret": (1, 255)}
REMIND_RANGE = (0, 7 * 24 * 60)
MAX_SITES = 1000


# --- who hears about a site ------------------------------------------------------------------------


class Audience:
    """The enabled channels of active users that may hear about each of `site_ids`, with the visibility
    rule of services.sites (admin, the site's owner, its members) evaluated once for the whole set."""

    def __init__(self, site_ids):
        ids = sorted(set(site_ids))
        self.owner: dict[int, int] = {}
        self.members: dict[int, set[int]] = defaultdict(set)
        self.admins: set[int] = set()
        self._channels: dict[int, list[Channel]] = defaultdict(list)
        if not ids:
            return
        self.owner = dict(db.session.execute(sa.select(Site.id, Site.owner_id).where(Site.id.in_(ids))).all())
        for site_id, user_id in db.session.execute(
            sa.select(SiteMember.site_id, SiteMember.user_id).where(SiteMember.site_id.in_(ids))
        ):
            self.members[site_id].add(user_id)
        self.admins = set(
            db.session.scalars(sa.select(User.id).where(User.role == "admin", User.is_active.is_(True))).all()
        )
        explicit: dict[int, set[int]] = defaultdict(set)
        for channel_id, site_id in db.session.execute(
            sa.select(ChannelSite.channel_id, ChannelSite.site_id).where(ChannelSite.site_id.in_(ids))
        ):
            explicit[channel_id].add(site_id)
        viewers = set(self.owner.values()) | self.admins | set().union(*self.members.values())
        channels = db.session.scalars(
            sa.select(Channel)
            .join(User, User.id == Channel.owner_id)
            .where(
                Channel.enabled.is_(True),
                User.is_active.is_(True),
                sa.or_(
                    sa.and_(Channel.all_sites.is_(True), Channel.owner_id.in_(viewers)),
                    Channel.id.in_(list(explicit)),
                ),
            )
            .order_by(Channel.id)
        ).all()
        for channel in channels:
            sites = self.owner if channel.all_sites else explicit.get(channel.id, ())
            for site_id in sites:
                if self.can_see(channel.owner_id, site_id):
                    self._channels[site_id].append(channel)

    def can_see(self, user_id: int, site_id: int) -> bool:
        if site_id not in self.owner:
            return False
        return user_id in self.admins or self.owner[site_id] == user_id or user_id in self.members[site_id]

    def channels_for(self, site_id: int, event: str) -> list[Channel]:
        return [channel for channel in self._channels.get(site_id, ()) if event in (channel.events or ())]


# --- people's side -----------------------------------------------------------------------------------


def list_channels(user: User) -> sa.Select:
    query = sa.select(Channel)
    if not user.is_admin:
        query = query.where(Channel.owner_id == user.id)
    return query.order_by(Channel.id)


def get_channel(user: User, channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None or not (user.is_admin or channel.owner_id == user.id):
        raise NotFound(f"channel {channel_id} not found")
    return channel


def create_channel(user: User, data: dict) -> Channel:
    missing = [name for name in ("name", "url") if data.get(name) is None]
    if missing:
        raise Invalid("name and url are required", errors={name: ["required"] for name in missing})
    channel = Channel(owner_id=user.id, events=list(EVENTS), all_sites=True)
    _apply(channel, data, owner=user)
    db.session.add(channel)
    db.session.commit()
    log.info("channel %s created by user %s: %s", channel.id, user.id, masked_url(channel))
    return channel


def update_channel(user: User, channel_id: int, changes: dict) -> Channel:
    channel = get_channel(user, channel_id)
    required = [name for name in ("name", "url") if name in changes and changes[name] is None]
    if required:
        raise Invalid("name and url cannot be removed", errors={name: ["required"] for name in required})
    if changes.get("url") is not None and changes["url"] == masked_url(channel):
        changes = {name: value for name, value in changes.items() if name != "url"}  # the answer sent back
    _apply(channel, changes, owner=db.session.get(User, channel.owner_id))
    db.session.commit()
    return channel


def delete_channel(user: User, channel_id: int) -> None:
    channel = get_channel(user, channel_id)
    db.session.delete(channel)
    db.session.commit()
    log.info("channel %s deleted by user %s", channel_id, user.id)


def _apply(channel: Channel, data: dict, owner: User) -> None:
    """Check every given field against the rules (Invalid naming each offending field), then set them."""
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    for name, (shortest, longest) in TEXT_LENGTHS.items():
        value = data.get(name)
        if value is not None and not (shortest <= len(value) <= longest):
            refuse(name, f"must be {shortest} to {longest} characters long")
    url = data.get("url")
    if url is not None and "url" not in errors:
        problem = url_problem(url)
        if problem:
            refuse("url", problem)
    if "events" in data:
        events = data["events"]
        if not events:
            refuse("events", f"at least one of {', '.join(EVENTS)}")
        elif any(event not in EVENTS for event in events):
            refuse("events", f"each one of {', '.join(EVENTS)}")
    if data.get("min_severity") is not None and data["min_severity"] not in SEVERITIES:
        refuse("min_severity", f"one of {', '.join(SEVERITIES)}")
    if data.get("language") is not None and data["language"] not in LANGUAGES:
        refuse("language", f"one of {', '.join(LANGUAGES)}")
    remind = data.get("remind_every_min")
    if remind is not None and not (REMIND_RANGE[0] <= remind <= REMIND_RANGE[1]):
        refuse("remind_every_min", f"must be between {REMIND_RANGE[0]} and {REMIND_RANGE[1]}")
    webhook = transports.is_webhook(url if url is not None else channel.url or "")
    secret = data.get("secret", channel.secret)
    if secret and not webhook and "url" not in errors:
        refuse("secret", "only webhooks (http/https) are signed; Apprise URLs carry their own credentials")
    site_ids = data.get("site_ids")
    if site_ids is not None:
        if not site_ids:
            refuse("site_ids", "at least one site, or null for every site the owner can see")
        elif len(set(site_ids)) > MAX_SITES:
            refuse("site_ids", f"at most {MAX_SITES} sites")
        else:
            for site_id in _invisible(owner, site_ids):
                refuse("site_ids", f"site {site_id} not found")
    if errors:
        raise Invalid("the channel's settings break its rules", errors=errors)

    for name in ("name", "min_severity", "language", "remind_every_min", "enabled", "secret"):
        if name in data and (data[name] is not None or name == "secret"):
            setattr(channel, name, data[name])
    if "events" in data:
        channel.events = [event for event in EVENTS if event in data["events"]]
    if url is not None:
        channel.url = url
        channel.kind = "webhook" if webhook else "apprise"
    if "site_ids" in data:
        channel.all_sites = site_ids is None
        channel.sites = [ChannelSite(site_id=site_id) for site_id in sorted(set(site_ids or ()))]


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a channel, or None."""
    if transports.is_webhook(url):
        parts = urlsplit(url)
        if not parts.hostname:
            return "a webhook URL needs a host"
        try:
            check_target(url)
        except Invalid as exc:
            return exc.message
        return None
    return transports.apprise_problem(url)


def _invisible(owner: User, site_ids: list[int]) -> list[int]:
    ids = sorted(set(site_ids))
    visible = set(
        db.session.scalars(sa.select(Site.id).where(Site.id.in_(ids), Site.id.in_(visible_site_ids(owner))))
    )
    return [site_id for site_id in ids if site_id not in visible]


def masked_url(channel: Channel) -> str:
    return transports.mask(channel.url)


# --- the test send (the one send made from a request) -------------------------------------------------


def send_test(user: User, channel_id: int) -> dict:
    """Send a `test` message over the channel now, bounded by NOTIFY_TIMEOUT_S, record it in the delivery
    log and answer with the outcome. Sent even when the channel is disabled (to try it before)."""
    from services.alerts.outbox import Delivery

    channel = get_channel(user, channel_id)
    config = current_app.config
    # Each test is a real message to a real address: bounded per user so the API cannot be made a spammer.
    ratelimit.count_call(
        "channel-test",
        user.id,
        config["CHANNEL_TEST_LIMIT"],
        config["CHANNEL_TEST_WINDOW_S"],
        "too many test messages, try again later",
    )
    now = datetime.now(UTC)
    details = {"message": "test"}
    title, body = render(
        "test", now, None, details, channel.language, config.get("CLOUDEYE_PUBLIC_URL"), channel.name
    )
    delivery = Delivery(
        notification_id=0,
        delivery_id=str(uuid.uuid4()),
        lease=now,
        channel_id=channel.id,
        kind=channel.kind,
        url=channel.url,
        secret=channel.secret,
        event="test",
        occurred_at=now,
        site=None,
        details=details,
        title=title,
        body=body,
        attempt=1,
    )
    db.session.rollback()  # no transaction is held open while the network is waited on
    started = time.monotonic()
    try:
        transports.deliver(
            delivery, float(config["NOTIFY_TIMEOUT_S"]), bool(config.get("ALLOW_PRIVATE_TARGETS", True))
        )
        error = None
    except transports.SendError as exc:
        error = str(exc)[:1000]
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    notification = Notification(
        channel_id=delivery.channel_id,
        site_id=None,
        event="test",
        delivery_id=delivery.delivery_id,
        occurred_at=now,
        payload={"site": None, "details": details},
        status="sent" if error is None else "failed",
        attempts=1,
        next_attempt_at=now,
        last_error=error,
        sent_at=datetime.now(UTC) if error is None else None,
    )
    db.session.add(notification)
    db.session.commit()
    log.info("test of channel %s by user %s: %s", channel_id, user.id, error or "delivered")
    return {
        "notification_id": notification.id,
        "delivered": error is None,
        "error": error,
        "duration_ms": duration_ms,
    }
