"""Alerts: channels (who hears what), the notification outbox (what is owed to whom) and maintenance
windows (when to keep quiet). The rules are in services/alerts/."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.extensions import db
from services.models.base import BigId, UTCDateTime, utcnow

# What a channel can subscribe to; `test` is sent by POST /channels/{id}/test whatever the selection.
EVENTS = ("site.down", "site.up", "site.flapping", "tls.expiring", "tamper.opened", "findings.new")
ALL_EVENTS = (*EVENTS, "test")
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
CHANNEL_KINDS = ("webhook", "apprise")
LANGUAGES = ("en", "zh-CN")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


class Channel(db.Model):
    """Where a user wants to hear about the sites they can see: a webhook or any Apprise URL."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str] = mapped_column(sa.String(2048))  # may hold tokens: masked in every answer and log
    kind: Mapped[str] = mapped_column(sa.String(16))  # webhook (http/https) | apprise (any other scheme)
    events: Mapped[list] = mapped_column(sa.JSON, default=lambda: list(EVENTS))
    # True: every site the owner can see (site_ids null in the API); False: the sites in channel_sites.
    all_sites: Mapped[bool] = mapped_column(default=True)
    min_severity: Mapped[str] = mapped_column(sa.String(16), default="high")
    remind_every_min: Mapped[int] = mapped_column(default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    secret: Mapped[str | None] = mapped_column(sa.String(255))  # webhook HMAC key; never answered
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    sites = relationship("ChannelSite", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def site_ids(self) -> list[int] | None:
        return None if self.all_sites else sorted(link.site_id for link in self.sites)


class ChannelSite(db.Model):
    """A site a channel is limited to (when it is not about every site its owner can see)."""

    __tablename__ = "channel_sites"

    channel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Notification(db.Model):
    """One (event, channel) pair owed or delivered: the outbox row and the delivery log in one.

    Written in the transaction of the state change that caused it; sent by sync (`sync/notify.py`),
    which claims it with a lease (`claimed_until`, `claimed_by`) and retries with backoff."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The sender's claim: pending rows whose next attempt is due.
        sa.Index("ix_notifications_due", "status", "next_attempt_at"),
        sa.Index("ix_notifications_channel_time", "channel_id", "created_at"),
        sa.Index("ix_notifications_site_time", "site_id", "created_at"),
        # The delivery log across channels, newest first (an admin's).
        sa.Index("ix_notifications_time", "created_at"),
        # Reminders: the latest site.down of a channel for a site.
        sa.Index("ix_notifications_reminders", "channel_id", "site_id", "event", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("channels.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(sa.String(32))
    # Sent as X-Cloudeye-Delivery and `delivery_id`: the same on every attempt, so receivers can dedup.
    delivery_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    occurred_at: Mapped[object] = mapped_column(UTCDateTime)
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # {"site": {...} | null, "details": {...}}
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[object | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(128))
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[object | None] = mapped_column(UTCDateTime)


class MaintenanceWindow(db.Model):
    """A period during which its sites' notifications are silenced and their checks do not count in
    uptime: one-off (`starts_at`..`ends_at`) or weekly (`weekdays` at `start_time` for `duration_min`,
    in `timezone`)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    starts_at: Mapped[object | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[object | None] = mapped_column(UTCDateTime)
    weekdays: Mapped[list | None] = mapped_column(sa.JSON)
    start_time: Mapped[str | None] = mapped_column(sa.String(5))  # HH:MM, local to `timezone`
    duration_min: Mapped[int | None] = mapped_column()
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    sites = relationship("MaintenanceSite", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def site_ids(self) -> list[int]:
        return sorted(link.site_id for link in self.sites)

    @property
    def recurring(self) -> bool:
        return self.weekdays is not None


class MaintenanceSite(db.Model):
    __tablename__ = "maintenance_window_sites"

    window_id: Mapped[int] = mapped_column(
        sa.ForeignKey("maintenance_windows.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )
