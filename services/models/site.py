import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.extensions import db
from services.models.base import UTCDateTime, utcnow

SITE_STATES = ("unknown", "up", "pending", "down")
PERMISSIONS = ("read", "write")


class Site(db.Model):
    __tablename__ = "sites"
    __table_args__ = (
        # The scheduler's claim query: active sites whose next check is due.
        sa.Index("ix_sites_due", "paused", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # The URL without the password of its userinfo, which is kept apart (services.sites: answers, the
    # `q` filter and log lines read `url`, only the probe reads both).
    url: Mapped[str] = mapped_column(sa.String(2048))
    url_password: Mapped[str | None] = mapped_column(sa.String(2048))
    check_interval_s: Mapped[int] = mapped_column(default=60)
    timeout_s: Mapped[int] = mapped_column(default=10)
    accepted_status: Mapped[str] = mapped_column(sa.String(100), default="200-399")
    keyword: Mapped[str | None] = mapped_column(sa.String(255))
    keyword_absent: Mapped[bool] = mapped_column(default=False)
    max_retries: Mapped[int] = mapped_column(default=0)
    tamper_enabled: Mapped[bool] = mapped_column(default=False)
    tamper_threshold: Mapped[float] = mapped_column(sa.Float, default=0.05)
    tamper_ignore: Mapped[list] = mapped_column(sa.JSON, default=list)
    forbidden_keywords: Mapped[list] = mapped_column(sa.JSON, default=list)
    paused: Mapped[bool] = mapped_column(default=False)

    # Monitoring state, written by the sync worker.
    state: Mapped[str] = mapped_column(sa.String(16), default="unknown")
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_checked_at: Mapped[object | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[object | None] = mapped_column(UTCDateTime, default=utcnow)
    check_requested_at: Mapped[object | None] = mapped_column(UTCDateTime)
    baseline_requested_at: Mapped[object | None] = mapped_column(UTCDateTime)
    tls_expires_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # A sync worker's claim on the check due at next_check_at; an expired claim is claimed again.
    claimed_until: Mapped[object | None] = mapped_column(UTCDateTime)
    # Alerts (services/alerts/events.py): since when the site flaps (its up/down news is held back until it
    # is stable), and the lowest TLS expiry threshold (days) already announced for its certificate.
    flapping_since: Mapped[object | None] = mapped_column(UTCDateTime)
    tls_alert_days: Mapped[int | None] = mapped_column()

    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner = relationship("User")
    members = relationship("SiteMember", cascade="all, delete-orphan", passive_deletes=True)


class SiteMember(db.Model):
    """A site shared with another user, for reading or writing."""

    __tablename__ = "site_members"

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    permission: Mapped[str] = mapped_column(sa.String(8), default="read")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")
