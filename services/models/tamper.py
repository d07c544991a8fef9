import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.extensions import db
from services.models.base import LongBlob, LongText, UTCDateTime, utcnow

EVENT_STATUSES = ("open", "accepted", "resolved", "false_positive")


class TamperBaseline(db.Model):
    """The page content a site is compared against: one row per site, content zlib-compressed."""

    __tablename__ = "tamper_baselines"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), unique=True)
    content: Mapped[bytes] = mapped_column(LongBlob)
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    script_domains: Mapped[list] = mapped_column(sa.JSON, default=list)
    taken_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)


class TamperEvent(db.Model):
    """A detected change. At most one open event per site: later changes update it."""

    __tablename__ = "tamper_events"
    __table_args__ = (
        sa.Index("ix_tamper_events_site_status", "site_id", "status", "detected_at"),
        sa.Index("ix_tamper_events_status_time", "status", "detected_at"),
        # Lists across sites, newest first (an admin's, or an operator's over its sites).
        sa.Index("ix_tamper_events_time", "detected_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    severity: Mapped[str] = mapped_column(sa.String(16), default="medium")
    change_ratio: Mapped[float] = mapped_column(sa.Float, default=0.0)
    forbidden_found: Mapped[list] = mapped_column(sa.JSON, default=list)
    new_domains: Mapped[list] = mapped_column(sa.JSON, default=list)
    diff: Mapped[str] = mapped_column(LongText, default="")
    content: Mapped[bytes | None] = mapped_column(LongBlob)  # compressed page that raised the event
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    detected_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(sa.Text)
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[object | None] = mapped_column(UTCDateTime)
