import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.extensions import db
from services.models.base import UTCDateTime, utcnow


class StatusPage(db.Model):
    """A public page (`/status/<slug>`) showing the state and uptime of some sites, without login."""

    __tablename__ = "status_pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    entries = relationship(
        "StatusPageSite",
        order_by="StatusPageSite.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )

    @property
    def site_ids(self) -> list[int]:
        return [entry.site_id for entry in self.entries]


class StatusPageSite(db.Model):
    """One site on a status page, in the page's order. Deleting the site takes it off every page."""

    __tablename__ = "status_page_sites"

    status_page_id: Mapped[int] = mapped_column(
        sa.ForeignKey("status_pages.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(default=0)
