import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.extensions import db
from services.models.base import BigId, UTCDateTime, utcnow
from services.models.site import LOCATION_NAME_LENGTH

CHECK_STATUSES = ("up", "down")
FAILURE_KINDS = ("dns", "refused", "timeout", "tls", "status", "keyword", "connection", "other")


class UsabilityCheck(db.Model):
    """One probe of one site. Raw rows are kept USABILITY_RETENTION_DAYS days; rollups keep the rest."""

    __tablename__ = "usability_checks"
    __table_args__ = (
        sa.Index("ix_usability_checks_site_time", "site_id", "checked_at"),
        sa.Index("ix_usability_checks_site_status_time", "site_id", "status", "checked_at"),
        sa.Index("ix_usability_checks_time", "checked_at"),
        # One check per site, due time and location, whichever replica of that location ran it. (site_id,
        # due_at) first: a site checked from any location is looked up by its slot alone.
        sa.UniqueConstraint("site_id", "due_at", "location", name="uq_usability_checks_site_due_location"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    due_at: Mapped[object] = mapped_column(UTCDateTime)
    # The location of the worker or agent that made it (CLOUDEYE_LOCATION, or the agent's).
    location: Mapped[str] = mapped_column(sa.String(LOCATION_NAME_LENGTH), default="default")
    # Arrived after its lease or after a newer result of its location (an agent cut off from the API):
    # kept in the history and the rollups, but it never voted.
    late: Mapped[bool] = mapped_column(default=False)
    checked_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(8))
    http_status: Mapped[int | None] = mapped_column()
    response_ms: Mapped[float | None] = mapped_column(sa.Float)
    failure_kind: Mapped[str | None] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    tls_expires_at: Mapped[object | None] = mapped_column(UTCDateTime)


class UsabilityRollup(db.Model):
    """Per-site counters per hour and per day: uptime and latency without scanning raw checks."""

    __tablename__ = "usability_rollups"

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    bucket_start: Mapped[object] = mapped_column(UTCDateTime, primary_key=True)
    checks_total: Mapped[int] = mapped_column(default=0)
    checks_up: Mapped[int] = mapped_column(default=0)
    latency_sum_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)
    latency_count: Mapped[int] = mapped_column(default=0)
    latency_max_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)
    # Checks made inside a maintenance window: counted here only, so they are left out of uptime %.
    checks_maintenance: Mapped[int] = mapped_column(default=0)


class UsabilityLocationRollup(db.Model):
    """Per-site, per-location counters per hour (sites with locations only): each location's uptime and
    latency, at the same flat cost as the site's own."""

    __tablename__ = "usability_location_rollups"

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    location: Mapped[str] = mapped_column(sa.String(LOCATION_NAME_LENGTH), primary_key=True)
    bucket_start: Mapped[object] = mapped_column(UTCDateTime, primary_key=True)
    checks_total: Mapped[int] = mapped_column(default=0)
    checks_up: Mapped[int] = mapped_column(default=0)
    latency_sum_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)
    latency_count: Mapped[int] = mapped_column(default=0)
    checks_maintenance: Mapped[int] = mapped_column(default=0)


class Incident(db.Model):
    """A down period of a site: opened when the state turns down, closed when it is up again."""

    __tablename__ = "incidents"
    __table_args__ = (sa.Index("ix_incidents_site_started", "site_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    started_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[object | None] = mapped_column(UTCDateTime)
    cause: Mapped[str | None] = mapped_column(sa.String(500))
    # The location whose result decided the down (for a site with locations: the one that made the quorum).
    location: Mapped[str | None] = mapped_column(sa.String(LOCATION_NAME_LENGTH))
    in_maintenance: Mapped[bool] = mapped_column(default=False)  # it began inside a maintenance window
    announced_at: Mapped[object | None] = mapped_column(UTCDateTime)  # when its site.down was emitted

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
