"""Queued imports: the big reports `POST /bugs/imports` answered with 202, imported by a sync worker.

The API keeps such a report in DATA_DIR/imports/<random>.report (the `data` volume every process shares)
and commits a `queued` import naming it (services/imports.py, `queue_report`). Every pass of the worker's
`imports` thread takes them oldest first, one at a time:

- a worker runs an import only while holding its lock: MySQL's GET_LOCK on a connection of its own
  (released by the server when the worker dies), or flock on SQLite (released by the kernel). So a
  `running` import whose lock is free has lost its worker;
- the run marks the import `running` (attempts + 1) in a transaction of its own, then imports the
  report with `services.imports.import_report` in ONE transaction, which commits the findings and the
  import's final state (`done`, counts) together. Nothing of an unfinished run is ever visible: a
  killed worker's transaction is rolled back by the database;
- progress (rows read, created/reopened/unchanged so far) goes to the import's row after the first
  batch and then at most every PROGRESS_INTERVAL_S, from another connection (MySQL; on SQLite, whose one writer is the
  import, the counts appear when it ends);
- an import found `running` with its lock free is run again from the start, up to IMPORT_MAX_ATTEMPTS
  runs in all; then it is `failed` ("the sync worker running it stopped ..."). A malformed report is
  `failed` at once with the parser's reason. Either way nothing of it was written;
- SIGTERM: the running import stops at its next batch, rolls back and goes back to `queued` (that run
  is not counted), for this worker after its restart or for another one;
- the report's file is removed once the import is done or failed; files that no queued or running
  import names (the API died before committing, the worker after) are removed after ORPHAN_AGE_S.
"""

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from services.errors import Conflict, DomainError
from services.extensions import db
from services.imports import import_report
from services.locks import lock_name, process_lock
from services.models import FindingImport, Site
from services.models.base import utcnow

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0
ORPHAN_AGE_S = 3600
ACTIVE = ("queued", "running")


class Interrupted(Exception):
    """The worker is stopping: the running import gives up and goes back to the queue."""


class ImportQueue:
    def __init__(self, data_dir: str, max_attempts: int = 2):
        self.root = Path(data_dir) / "imports"
        self.locks = self.root / ".locks"
        self.max_attempts = max(1, max_attempts)
        # Set while this worker runs an import: the search indexer waits for it (sync/worker.py).
        self.importing = threading.Event()

    def run(self, stopping: threading.Event | None = None) -> dict[str, int]:
        """One pass: every queued import (and every running one whose worker died), oldest first; then
        the removal of orphaned report files."""
        counts: dict[str, int] = {}
        done: set[int] = set()
        while not (stopping is not None and stopping.is_set()):
            ids = [
                import_id
                for import_id in db.session.scalars(
                    sa.select(FindingImport.id)
                    .where(FindingImport.state.in_(ACTIVE))
                    .order_by(FindingImport.id)
                    .limit(len(done) + 20)
                )
                if import_id not in done
            ]
            db.session.rollback()  # no snapshot kept across the imports
            if not ids:
                break
            import_id = ids[0]
            done.add(import_id)
            outcome = self.process(import_id, stopping)
            counts[outcome] = counts.get(outcome, 0) + 1
        if not (stopping is not None and stopping.is_set()):
            self.sweep()
        return counts

    def process(self, import_id: int, stopping: threading.Event | None = None) -> str:
        """done | failed | busy (another worker runs it) | gone | requeued."""
        with self._lock(import_id) as acquired:
            if not acquired:
                return "busy"
            record = db.session.get(FindingImport, import_id, populate_existing=True)
            if record is None or record.state not in ACTIVE:
                db.session.rollback()
                return "gone"
            if record.state == "running":
                if record.attempts >= self.max_attempts:
                    log.error(
                        "import %s: the sync worker running it stopped %d times; marked failed",
                        import_id,
                        record.attempts,
                    )
                    return self._fail(
                        record,
                        f"the sync worker running it stopped before it finished ({record.attempts} times); "
                        "nothing of it was written",
                    )
                log.warning("import %s: its sync worker stopped during it; running it again", import_id)
            self.importing.set()
            try:
                return self._run(record, stopping)
            finally:
                self.importing.clear()

    def _run(self, record: FindingImport, stopping: threading.Event | None) -> str:
        import_id = record.id
        site = db.session.get(Site, record.site_id)
        path = self.root / record.spool if record.spool else None
        if site is None:
            db.session.rollback()
            return "gone"
        if path is None or not path.is_file():
            return self._fail(record, "the report's file is missing from DATA_DIR/imports")
        record.state = "running"
        record.attempts += 1
        record.started_at = utcnow()
        record.rows_read = record.created = record.reopened = record.unchanged = record.closed = 0
        db.session.commit()
        log.info(
            "import %s into site %s: started (run %d), %s", import_id, site.id, record.attempts, path.name
        )
        progress = _Progress(import_id, stopping)
        try:
            with path.open("rb") as stream:
                record = import_report(
                    site,
                    stream,
                    format=record.format,
                    close_missing=record.close_missing,
                    user_id=record.user_id,
                    source=record.source,
                    filename=record.filename,
                    record=record,
                    progress=progress,
                )
        except Interrupted:
            db.session.rollback()
            self._requeue(import_id)
            log.info("import %s: stopped with the worker, back in the queue", import_id)
            return "requeued"
        except Conflict as exc:
            # Another import into the site holds its lock, or its findings moved under this one.
            db.session.rollback()
            self._requeue(import_id)
            log.info("import %s: not now (%s), back in the queue", import_id, exc.message)
            return "requeued"
        except DomainError as exc:  # the report itself: malformed, too big; import_report rolled back
            db.session.rollback()
            log.warning("import %s failed: %s", import_id, exc.message)
            return self._fail(db.session.get(FindingImport, import_id), _describe(exc), path)
        except sa.exc.SQLAlchemyError:
            # The database is out of reach: the import stays running, and the next pass (this worker's
            # or another's) finds its lock free and runs it again, up to IMPORT_MAX_ATTEMPTS.
            db.session.rollback()
            raise
        except Exception as exc:
            db.session.rollback()
            log.exception("import %s failed", import_id)
            return self._fail(db.session.get(FindingImport, import_id), f"import failed: {exc!r}", path)
        _remove(path)
        return "done"

    def _fail(self, record: FindingImport | None, reason: str, path: Path | None = None) -> str:
        if record is None:
            db.session.rollback()
            return "gone"
        path = path or (self.root / record.spool if record.spool else None)
        record.state = "failed"
        record.error = reason[:2000]
        record.finished_at = utcnow()
        # What the failed run counted so far was rolled back with it: nothing was changed.
        record.created = record.reopened = record.unchanged = record.closed = 0
        record.findings_in_report = 0
        db.session.commit()
        if path is not None:
            _remove(path)
        return "failed"

    def _requeue(self, import_id: int) -> None:
        db.session.execute(
            sa.update(FindingImport)
            .where(FindingImport.id == import_id, FindingImport.state == "running")
            .values(
                state="queued",
                attempts=FindingImport.attempts - 1,  # that run is not held against the report
                rows_read=0,
                created=0,
                reopened=0,
                unchanged=0,
                closed=0,
            )
        )
        db.session.commit()

    def sweep(self) -> int:
        """Remove report files that no queued or running import names, once ORPHAN_AGE_S old."""
        try:
            entries = [path for path in self.root.iterdir() if path.is_file()]
        except FileNotFoundError:
            return 0
        if not entries:
            return 0
        named = set(
            db.session.scalars(sa.select(FindingImport.spool).where(FindingImport.state.in_(ACTIVE))).all()
        )
        db.session.rollback()
        removed = 0
        now = time.time()
        for path in entries:
            name = path.name
            if name in named or name.removesuffix(".part") in named:
                continue
            try:
                if now - path.stat().st_mtime < ORPHAN_AGE_S:
                    continue
            except FileNotFoundError:
                continue
            _remove(path)
            removed += 1
            log.info("imports: removed %s, which no queued import names", name)
        return removed

    @contextlib.contextmanager
    def _lock(self, import_id: int):
        name = lock_name("cloudeye-import-", db.engine, str(import_id))
        with process_lock(db.engine, name, self.locks) as acquired:
            yield acquired


class _Progress:
    """Called by import_report after each batch: stop when the worker stops, and publish the progress."""

    def __init__(self, import_id: int, stopping: threading.Event | None):
        self.import_id = import_id
        self.stopping = stopping
        self.next_at = time.monotonic()  # the first batch shows at once, then every PROGRESS_INTERVAL_S
        # The import's transaction holds SQLite's one write lock: no other connection may write.
        self.publish = db.engine.dialect.name != "sqlite"

    def __call__(self, reconciler) -> None:
        if self.stopping is not None and self.stopping.is_set():
            raise Interrupted()
        now = time.monotonic()
        if not self.publish or now < self.next_at:
            return
        self.next_at = now + PROGRESS_INTERVAL_S
        counts = reconciler.counts()
        with db.engine.connect() as connection:
            connection.execute(
                sa.update(FindingImport.__table__)
                .where(FindingImport.id == self.import_id)
                .values(
                    rows_read=reconciler.processed,
                    created=counts["created"],
                    reopened=counts["reopened"],
                    unchanged=counts["unchanged"],
                )
            )
            connection.commit()


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _describe(exc: DomainError) -> str:
    details = [message for messages in (exc.errors or {}).values() for message in messages]
    return details[0] if len(details) == 1 else exc.message
