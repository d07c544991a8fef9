import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.extensions import db
from services.models.base import UTCDateTime, utcnow

SITE_STATES = ("unknown", "up", "pending", "down")
PERMISSIONS = ("read", "write")
# A location's view of a site (its vote): like a site's state, from that location's own checks.
LOCATION_STATES = ("unknown", "up", "pending", "down")
LOCATION_NAME_LENGTH = 64


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
    # Where it is checked from (docs/sync.md, Locations): [] = any one location, exactly once per slot;
    # otherwise once per slot from each named location, and `quorum` of them (None: a majority) must see
    # it down before it is down. Each named location has a SiteLocation row (its schedule and its vote).
    locations: Mapped[list] = mapped_column(sa.JSON, default=list)
    quorum: Mapped[int | None] = mapped_column()

    # Monitoring state, written by the sync worker.
    state: Mapped[str] = mapped_column(sa.String(16), default="unknown")
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_checked_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # The schedule of a site checked from any location; None for a site with locations (each location's
    # schedule is in site_locations), so the claim query of the sites table never sees those.
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

    @property
    def effective_quorum(self) -> int | None:
        """How many live locations must see the site down: `quorum`, or a majority of its locations."""
        if not self.locations:
            return None
        return self.quorum or len(self.locations) // 2 + 1


class SiteLocation(db.Model):
    """One location of a site with locations: its own schedule and claim (like `sites.next_check_at` and
    `claimed_until` for a site checked from anywhere) and its vote, the state of the site as seen from
    there (its own consecutive failures against the site's max_retries)."""

    __tablename__ = "site_locations"
    __table_args__ = (
        # The claim query of a location: its rows whose next check is due (None: paused, never due).
        sa.Index("ix_site_locations_due", "location", "next_check_at"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    location: Mapped[str] = mapped_column(sa.String(LOCATION_NAME_LENGTH), primary_key=True)
    next_check_at: Mapped[object | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[object | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(sa.String(16), default="unknown")
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_checked_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # The slot of the latest result that voted: an older one arriving after it is late and does not vote.
    last_due_at: Mapped[object | None] = mapped_column(UTCDateTime)
    last_cause: Mapped[str | None] = mapped_column(sa.String(500))


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
