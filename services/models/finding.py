import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.extensions import db
from services.models.base import BigId, LongText, UTCDateTime, utcnow

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}  # info=0 .. critical=4
FINDING_STATUSES = ("open", "confirmed", "fixed", "false_positive", "accepted_risk")
ACTIVE_STATUSES = ("open", "confirmed")
TRIAGED_STATUSES = ("false_positive", "accepted_risk")  # an import never changes these
FORMATS = ("nuclei", "zap", "sarif", "burp", "nikto", "xray", "wapiti", "generic")
# An import answered at once is `done` when the answer comes; a big one queued for the sync worker goes
# queued -> running -> done or failed (services/imports.py, sync/imports.py).
IMPORT_STATES = ("queued", "running", "done", "failed")


class Finding(db.Model):
    """One vulnerability on one site, deduplicated by (site, dedup_key)."""

    __tablename__ = "findings"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "dedup_key", name="uq_findings_site_dedup"),
        # What uses each index: docs/benchmarks.md, "Indexes of findings" (`bench/bench_import.py --audit`).
        # a site's findings most severe first (and so an operator's, site by site), its severity and
        # status filters and counts, the site page's open counts; `id` before `status` so that the
        # index's order within a site is the list's (severity, id)
        sa.Index("ix_findings_site_sev_status", "site_id", "severity_rank", "id", "status"),
        # close_missing, a site's scanner filter
        sa.Index("ix_findings_site_scanner_status", "site_id", "scanner", "status"),
        # a site's lists by last and by first seen
        sa.Index("ix_findings_site_last_seen", "site_id", "last_seen_at"),
        sa.Index("ix_findings_site_first_seen", "site_id", "first_seen_at"),
        # lists across sites (an admin's, an operator's) by severity (the default order), last, first seen
        sa.Index("ix_findings_severity", "severity_rank"),
        # an admin's status filters in severity order (status by status)
        sa.Index("ix_findings_status_sev", "status", "severity_rank"),
        sa.Index("ix_findings_last_seen", "last_seen_at"),
        sa.Index("ix_findings_first_seen", "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    scanner: Mapped[str] = mapped_column(sa.String(32))
    dedup_key: Mapped[str] = mapped_column(sa.String(64))
    rule_id: Mapped[str] = mapped_column(sa.String(255))
    title: Mapped[str] = mapped_column(sa.String(500))
    severity: Mapped[str] = mapped_column(sa.String(16))
    severity_rank: Mapped[int] = mapped_column(sa.SmallInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    host: Mapped[str] = mapped_column(sa.String(255), default="")
    path: Mapped[str] = mapped_column(sa.String(1024), default="")
    param: Mapped[str] = mapped_column(sa.String(255), default="")
    location: Mapped[str] = mapped_column(sa.String(2048), default="")
    description: Mapped[str | None] = mapped_column(LongText)
    cwe: Mapped[str | None] = mapped_column(sa.String(64))
    references: Mapped[list] = mapped_column(sa.JSON, default=list)
    evidence: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)
    first_seen_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    fixed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # The import that saw the finding last. No foreign key: it would cost every imported row an index
    # entry and a lock on the import's row (which the sync worker updates with its progress while its
    # import runs); imports are only deleted with their site, which deletes its findings too.
    last_import_id: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FindingImport(db.Model):
    """One imported report (API upload or inbox file) and what it did."""

    __tablename__ = "bug_imports"
    __table_args__ = (
        sa.Index("ix_bug_imports_site_time", "site_id", "created_at"),
        sa.Index("ix_bug_imports_file", "site_id", "file_sha256"),
        sa.Index("ix_bug_imports_state", "state"),  # the sync worker's queue: queued and running ones
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(sa.String(8), default="api")  # api | inbox
    format: Mapped[str] = mapped_column(sa.String(16))
    scanner: Mapped[str] = mapped_column(sa.String(32))
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    file_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    close_missing: Mapped[bool] = mapped_column(default=False)
    findings_in_report: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    reopened: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    closed: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # Server defaults too: rows written by plain SQL (a bulk load, an older release during an upgrade)
    # are finished imports.
    state: Mapped[str] = mapped_column(sa.String(8), default="done", server_default="done")  # IMPORT_STATES
    rows_read: Mapped[int] = mapped_column(default=0, server_default="0")  # findings read (repeats included)
    error: Mapped[str | None] = mapped_column(sa.String(2000))  # why it failed
    spool: Mapped[str | None] = mapped_column(sa.String(64))  # a queued report's file in DATA_DIR/imports
    attempts: Mapped[int] = mapped_column(
        sa.SmallInteger, default=0, server_default="0"
    )  # runs by sync workers
    started_at: Mapped[object | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)
