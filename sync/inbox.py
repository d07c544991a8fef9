"""The report inbox: scanner reports dropped into DATA_DIR/inbox/<site_id>/ are imported like an upload.

Convention for whoever drops files: write the file under a temporary name (ending in .tmp or .part, or
starting with a dot) and rename it when complete; the rename is atomic. Files modified within the last
SYNC_INBOX_SETTLE_S seconds are left alone too, so a plain slow copy is not read half-way either.

Each file is imported with `services.imports.import_report(..., source="inbox", filename=name)` — same
format detection and rules as `POST /bugs/imports`, one transaction — then moved to
DATA_DIR/processed/<site_id>/, or to DATA_DIR/failed/<site_id>/ beside a `<name>.reason.txt`.
A format named in the file name before its extension (`nightly.zap.xml`, `scan.nikto.json`,
`xray.json`) is the file's `format`, as if given to the API: so an empty `scan.nuclei.jsonl` is a scan
that found nothing.

Exactly once, with any number of workers and kill -9 at any point:
- a worker handles a file only while holding the lock of its site directory: MySQL's GET_LOCK on a
  connection of its own (released by the server if the worker dies), or flock on SQLite (one host;
  released by the kernel). Nobody else touches the file meanwhile, a site's reports are imported one at
  a time, and there is no "claimed" state that a dead worker could leave behind.
- killed during the import: the transaction never committed, the file is still in the inbox, the next
  pass imports it again;
- killed after the commit but before the move: the next pass finds a FindingImport of this site with the
  same file name and SHA-256 from the inbox, and only moves the file.
"""

import contextlib
import hashlib
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from services.errors import Conflict, DomainError
from services.extensions import db
from services.imports import import_report, stored_filename
from services.locks import lock_name, process_lock
from services.models import FindingImport, Site
from services.parsers.detect import format_from_filename

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", ".filepart")
MAX_ATTEMPTS = 3  # unexpected errors on the same file content before it is moved to failed/


class Inbox:
    def __init__(self, data_dir: str, settle_s: float = 5.0, max_bytes: int | None = None):
        base = Path(data_dir)
        self.root = base / "inbox"
        self.processed = base / "processed"
        self.failed = base / "failed"
        self.locks = self.root / ".locks"
        self.settle_s = settle_s
        self.max_bytes = max_bytes
        self._attempts: dict[tuple[str, str], int] = {}

    # --- scanning ------------------------------------------------------------------------------------

    def pending(self) -> list[Path]:
        """Files ready to import, oldest first."""
        if not self.root.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            return []
        ready = []
        now = time.time()
        for entry in self._entries(self.root):
            if entry.is_dir():
                for path in self._entries(entry):
                    if path.is_file() and self._ready(path, now):
                        ready.append(path)
            elif entry.is_file() and self._ready(entry, now):
                ready.append(entry)
        return sorted(ready, key=lambda p: (_mtime(p), str(p)))

    @staticmethod
    def _entries(directory: Path) -> list[Path]:
        try:
            return [p for p in directory.iterdir() if not p.name.startswith(".")]
        except FileNotFoundError:
            return []
        except OSError as exc:  # e.g. a directory the worker may not read: the others still go on
            log.warning("inbox: cannot list %s: %s", directory, exc)
            return []

    def _ready(self, path: Path, now: float) -> bool:
        if path.name.lower().endswith(PARTIAL_SUFFIXES):
            return False
        mtime = _mtime(path)
        return mtime is not None and now - mtime >= self.settle_s

    def run(self, stopping: threading.Event | None = None) -> dict[str, int]:
        """One pass over the inbox; stops between files when `stopping` is set."""
        counts: dict[str, int] = {}
        for path in self.pending():
            if stopping is not None and stopping.is_set():
                break
            try:
                outcome = self.process(path)
            except sa.exc.SQLAlchemyError:
                raise  # the database is unreachable: no use trying the next files now
            except Exception:
                # One file that cannot be handled (a full disk, a move refused...) must not hold up
                # the files behind it; it stays where it is and is tried again on the next pass.
                log.exception("inbox: %s could not be handled, it stays in the inbox", path)
                outcome = "error"
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    # --- one file ------------------------------------------------------------------------------------

    def process(self, path: Path) -> str:
        """imported | duplicate | failed | busy (another worker has it) | gone | retry."""
        site_dir = path.parent.name if path.parent != self.root else None
        with self._lock(path) as acquired:
            if not acquired:
                return "busy"
            if not path.is_file():
                return "gone"  # another worker finished it
            if site_dir is None or not site_dir.isdigit() or int(site_dir) <= 0:
                self._move_failed(
                    path,
                    site_dir,
                    "reports go into inbox/<site id>/ (a directory named after the numeric id of the site)",
                )
                return "failed"
            site_id = int(site_dir)
            if not self._ready(path, time.time()):
                return "retry"  # changed since the scan
            try:
                size = path.stat().st_size
                if self.max_bytes is not None and size > self.max_bytes:
                    self._move_failed(
                        path, site_dir, f"the file has {size} bytes, more than {self.max_bytes}"
                    )
                    return "failed"
                digest = _sha256(path)
            except FileNotFoundError:
                return "gone"
            except OSError as exc:  # unreadable (permissions): say so beside it instead of retrying forever
                self._move_failed(path, site_dir, f"the file cannot be read: {exc}")
                log.warning("inbox: %s cannot be read: %s", path, exc)
                return "failed"
            return self._import(path, site_id, digest)

    def _import(self, path: Path, site_id: int, digest: str) -> str:
        site_dir = str(site_id)
        try:
            site = db.session.get(Site, site_id)
            if site is None:
                db.session.rollback()
                self._move_failed(path, site_dir, f"site {site_id} does not exist")
                return "failed"
            earlier = db.session.scalar(
                sa.select(FindingImport.id).where(
                    FindingImport.site_id == site_id,
                    FindingImport.file_sha256 == digest,
                    FindingImport.source == "inbox",
                    FindingImport.filename == stored_filename(path.name),
                )
            )
            if earlier is not None:
                db.session.rollback()
                log.info("inbox: %s was imported before (import %s), moving it", path, earlier)
                self._move(path, self.processed / site_dir)
                return "duplicate"
            started = time.perf_counter()
            with path.open("rb") as stream:
                record = import_report(
                    site,
                    stream,
                    format=format_from_filename(path.name),
                    source="inbox",
                    filename=path.name,
                )
        except Conflict as exc:
            # Another import into this site holds its lock, or the findings moved under us: try again.
            db.session.rollback()
            log.info("inbox: %s not imported yet (%s), will retry", path, exc.message)
            return "retry"
        except DomainError as exc:
            # The report itself is at fault (bad format, unreadable): import_report rolled back.
            db.session.rollback()
            self._move_failed(path, site_dir, _describe(exc))
            log.warning("inbox: %s rejected: %s", path, exc.message)
            return "failed"
        except Exception as exc:
            db.session.rollback()
            key = (str(path), digest)
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            if attempts >= MAX_ATTEMPTS:
                self._attempts.pop(key, None)
                self._move_failed(path, site_dir, f"import failed {attempts} times: {exc!r}"[:2000])
                log.exception("inbox: %s failed %d times, moved to failed/", path, attempts)
                return "failed"
            log.warning("inbox: importing %s failed (attempt %d), will retry: %s", path, attempts, exc)
            return "retry"
        self._attempts.pop((str(path), digest), None)
        self._move(path, self.processed / site_dir)
        log.info(
            "inbox: imported %s into site %s as import %s (%s %s: %s created, %s reopened, %s unchanged, "
            "%s closed) in %.1f s",
            path.name,
            site_id,
            record.id,
            record.format,
            record.scanner,
            record.created,
            record.reopened,
            record.unchanged,
            record.closed,
            time.perf_counter() - started,
        )
        return "imported"

    # --- moving --------------------------------------------------------------------------------------

    def _move_failed(self, path: Path, site_dir: str | None, reason: str) -> Path:
        target_dir = self.failed / site_dir if site_dir else self.failed
        target = _free_name(target_dir, path.name)
        # The reason first: killed in between, the file is still in the inbox and fails again.
        reason_file = target.with_name(target.name + ".reason.txt")
        reason_file.write_text(f"{datetime.now(UTC).isoformat()} {path.name}: {reason}\n", encoding="utf-8")
        os.replace(path, target)
        return target

    def _move(self, path: Path, target_dir: Path) -> Path:
        target = _free_name(target_dir, path.name)
        os.replace(path, target)
        return target

    # --- locking -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, path: Path):
        # One lock per site directory: a site's reports are imported one at a time, in order.
        scope = path.parent.name if path.parent != self.root else "/"
        name = lock_name("cloudeye-inbox-", db.engine, scope)
        with process_lock(db.engine, name, self.locks) as acquired:
            yield acquired


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _free_name(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if not target.exists():
        return target
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return directory / f"{name}.{stamp}"


def _describe(exc: DomainError) -> str:
    text = exc.message
    if exc.errors:
        text += f" {exc.errors}"
    return text[:4000]
