import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.extensions import db
from services.models.base import UTCDateTime, utcnow


class WorkerHeartbeat(db.Model):
    """Liveness of sync workers when Redis is not configured (with Redis the heartbeat lives there)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    location: Mapped[str] = mapped_column(sa.String(64), default="default", index=True)
    beat_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    info: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Set when the worker stopped cleanly: its location is remembered (last seen) but it no longer counts.
    stopped_at: Mapped[object | None] = mapped_column(UTCDateTime, nullable=True)
