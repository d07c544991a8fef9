"""Importing scanner reports: parse, deduplicate, apply the re-import rules, record the import.

Rules (docs/domain.md, "Findings"): a finding not seen before is created; one seen again that is open or confirmed
stays as it is (its `last_seen_at` moves); one that was fixed is reopened; false_positive and
accepted_risk are never touched by an import; with `close_missing`, the open/confirmed findings of the
site and scanner that the report no longer lists become fixed. A finding the scanner itself reports as
triaged (a suppressed SARIF result, a Burp issue marked false positive) takes that status, unless it
was triaged already.

Built for size: the report is parsed as a stream and handled in batches of BATCH_SIZE distinct findings:
one SELECT looks the batch's dedup keys up, one multi-row INSERT writes its new findings, one UPDATE per
outcome (seen, reopened) touches the known ones. Every finding seen by an import gets the import's
timestamp in `last_seen_at`, so closing the missing ones is a single set-based UPDATE at the end.
Everything happens in one transaction: a report that turns out malformed halfway changes nothing.
"""

import contextlib
import functools
import hashlib
import io
import itertools
import logging
import operator
import os
import queue
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, has_app_context

from services.alerts import events as alert_events
from services.errors import Conflict, DomainError, Invalid
from services.extensions import db
from services.locks import lock_name, mysql_named_lock
from services.models import (
    ACTIVE_STATUSES,
    SEVERITIES,
    SEVERITY_RANK,
    TRIAGED_STATUSES,
    Finding,
    FindingImport,
    Site,
)
from services.models.base import utcnow
from services.parsers.base import ParsedFinding, ReportError, normalise_severity
from services.parsers.detect import HEAD_BYTES, detect_format, open_report
from services.sites import get_site, invalidate_site

log = logging.getLogger(__name__)

BATCH_SIZE = 1000  # dedup keys per lookup, rows per INSERT/UPDATE
READ_AHEAD = 2  # batches parsed ahead of the one being written (sync worker, inbox)
PROGRESS_EVERY = 10_000
LOCK_TIMEOUT_S = 120
# Characters a finding keeps of each text: a scanner's longer text is cut, never refused. The string
# columns give their own sizes; the long texts have none, so their cut is set here.
LIMITS = {
    **{
        column.name: column.type.length
        for column in Finding.__table__.columns
        if isinstance(column.type, sa.String) and column.type.length
    },
    "evidence": 16_000,  # TEXT holds 64 KB: 16k characters of up to 4 bytes
    "description": 1_000_000,  # MEDIUMTEXT holds 16 MB
    "reference": 2048,  # each entry of the JSON list `references`
    "filename": FindingImport.__table__.c.filename.type.length,
}
MAX_REFERENCES = 50


class ReportTooLarge(DomainError):
    status = 413
    title = "Payload Too Large"


def import_report(
    site,
    stream,
    *,
    format=None,
    close_missing=False,
    user_id=None,
    source="api",
    filename=None,
    offload=None,
    record=None,
    progress=None,
) -> FindingImport:
    """Import one report (a binary file object) into `site`, in one transaction, and commit.

    Raises Invalid (422) when the report is malformed or not of the format given, ReportTooLarge (413)
    beyond MAX_REPORT_BYTES; in both cases after rolling back, so nothing has changed. `offload(fn)` runs
    the reading and parsing of the report (batch by batch) somewhere else than the caller, e.g. off the
    API's event loop (services/uploads.py); the database work stays with the caller.

    `record`: the queued import the sync worker runs (committed already, state running); it is left
    untouched until the end, so that `progress(reconciler)`, called after each batch, may update its
    row from another connection meanwhile (sync/imports.py). Without it a new import row is written.
    """
    run = offload or (lambda function, *args: function(*args))
    started = time.monotonic()
    site_id = site.id
    limit = current_app.config.get("MAX_REPORT_BYTES") if has_app_context() else None
    raw = _ReportBytes(stream, limit)
    reader = io.BufferedReader(raw, buffer_size=HEAD_BYTES)
    with _import_lock(site_id):
        try:
            info, findings = run(open_report, reader, format)
            if record is None:
                record = FindingImport(
                    site_id=site_id,
                    user_id=user_id,
                    source=source,
                    format=info.format,
                    scanner=info.format,  # the real names are known once the report has been read
                    filename=stored_filename(filename),
                    close_missing=bool(close_missing),
                )
                db.session.add(record)
                db.session.flush()
            import_id = record.id
            reconciler = FindingReconciler(site_id, import_id=import_id, label=f"import {import_id}")
            # Without an event loop to keep free (the sync worker, the inbox), the next batches are parsed
            # in a thread of their own while this one waits for the database with the current one.
            # With PyMySQL that thread also writes each finding's row as SQL (escaped by the connection), so
            # that this one only sends the INSERTs: the client's share of a bulk INSERT overlaps the server's.
            if offload is None:
                reconciler.literals = _RowLiterals.of(db.session.connection(), reconciler)
            batches = _ReadAhead(findings, reconciler.literals) if offload is None else None
            try:
                while batch := (batches.next() if batches is not None else run(_next_batch, findings)):
                    for key, finding, cleaned, literal in batch:
                        reconciler.add(finding, key, cleaned, literal)
                    if progress is not None:
                        progress(reconciler)
            finally:
                if batches is not None:
                    batches.close()
            reconciler.flush()
            run(_read_to_the_end, reader)  # the hash covers every byte, even after the last finding
            if close_missing:
                for scanner in info.scanners:
                    reconciler.close_missing(scanner)
            counts = reconciler.counts()
            record.format = info.format
            record.scanner = ",".join(info.scanners)[: LIMITS["scanner"]] or info.format
            record.state = "done"
            record.error = None
            record.rows_read = reconciler.processed
            record.finished_at = utcnow()
            record.file_sha256 = raw.sha256.hexdigest()
            record.findings_in_report = reconciler.distinct
            record.created = counts["created"]
            record.reopened = counts["reopened"]
            record.unchanged = counts["unchanged"]
            record.closed = counts["closed"]
            record.duration_ms = round((time.monotonic() - started) * 1000, 1)
            alert_events.findings_new(
                site, reconciler.new_by_severity, f"import {record.id} ({record.scanner})", record.id
            )
            db.session.commit()
        except ReportError as exc:
            db.session.rollback()
            log.warning("report refused for site %s (%s, %s): %s", site_id, source, filename, exc)
            raise Invalid(f"the report cannot be imported: {exc}", errors={"file": [str(exc)]}) from None
        except sa.exc.IntegrityError:
            db.session.rollback()
            raise Conflict("the site's findings changed during the import; try again") from None
        except BaseException:
            db.session.rollback()
            raise
    invalidate_site(site_id)
    log.info(
        "import %s site=%s format=%s scanner=%s source=%s file=%s: %d findings "
        "(created=%d reopened=%d unchanged=%d closed=%d) in %.0f ms, %d bytes",
        record.id,
        site_id,
        record.format,
        record.scanner,
        source,
        record.filename,
        record.findings_in_report,
        record.created,
        record.reopened,
        record.unchanged,
        record.closed,
        record.duration_ms,
        raw.size,
    )
    return record


def _next_batch(findings, literals=None) -> list[tuple[str, ParsedFinding, dict, str | None]]:
    """The next BATCH_SIZE findings of the report with their dedup keys, their values cleaned for a new
    row and (with `literals`) that row as SQL; empty at the end. The per-finding work, done where the
    parsing is."""
    batch = []
    for finding in itertools.islice(findings, BATCH_SIZE):
        key = finding.dedup_key()
        cleaned = _cleaned(finding)
        literal = literals.row(key, cleaned) if literals is not None and literals.wanted(finding) else None
        batch.append((key, finding, cleaned, literal))
    return batch


class _ReadAhead:
    """Parses a report's next batches (READ_AHEAD of them) in a thread while the caller writes the current
    one: the parser's CPU time overlaps the database's. Errors of the parser (a malformed report, one
    beyond MAX_REPORT_BYTES) come out of `next()` as they would from the parser itself."""

    def __init__(self, findings, literals=None):
        self._queue: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(findings, literals), name="import-parser", daemon=True
        )
        self._thread.start()

    def _produce(self, findings, literals) -> None:
        try:
            while True:
                batch = _next_batch(findings, literals)
                if not self._put((batch, None)) or not batch:
                    return
        except BaseException as exc:  # handed to the caller, which raises it
            self._put(([], exc))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> list:
        batch, error = self._queue.get()
        if error is not None:
            raise error
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _read_to_the_end(reader) -> None:
    while reader.read(HEAD_BYTES):
        pass


def import_upload(
    user, site_id: int, stream, *, format=None, close_missing=False, filename=None, offload=None
) -> tuple[FindingImport, bool]:
    """An import through the API or the console: the caller needs write access to the site (404 when it
    cannot see it, 403 when it may only read it), checked before a byte of the report is read.

    A report of up to IMPORT_QUEUE_BYTES is imported at once (the import is `done` when this returns);
    a bigger one is queued for the sync worker (`queued`). Returns (import, queued)."""
    site = get_site(user, site_id, write=True)
    threshold = current_app.config.get("IMPORT_QUEUE_BYTES") or 0
    size = _stream_size(stream)
    if threshold and size is not None and size > threshold:
        record = queue_report(
            site,
            stream,
            size,
            format=format,
            close_missing=close_missing,
            user_id=user.id,
            filename=filename,
            offload=offload,
        )
        return record, True
    record = import_report(
        site,
        stream,
        format=format,
        close_missing=close_missing,
        user_id=user.id,
        source="api",
        filename=filename,
        offload=offload,
    )
    return record, False


def spool_dir() -> Path:
    """Where queued reports wait for the sync worker: DATA_DIR/imports (the shared `data` volume)."""
    return Path(current_app.config["DATA_DIR"]) / "imports"


def queue_report(
    site, stream, size: int, *, format=None, close_missing=False, user_id=None, filename=None, offload=None
) -> FindingImport:
    """Keep the report in DATA_DIR/imports and record a `queued` import for the sync worker.

    What can be told at once is: a report beyond MAX_REPORT_BYTES is refused (413) and one whose format
    cannot be told from its first bytes (when `format` is not given) is refused (422), as the import
    itself would; a report malformed further on fails in the worker (state `failed`, with the reason).
    The file is written under a temporary name and renamed before the import row is committed; a file
    that no queued import names is removed by the worker (sync/imports.py).
    """
    run = offload or (lambda function, *args: function(*args))
    limit = current_app.config.get("MAX_REPORT_BYTES")
    if limit and size > limit:
        raise ReportTooLarge(f"the report is larger than the limit of {limit} bytes")
    head = run(stream.read, HEAD_BYTES)
    stream.seek(0)
    try:
        report_format = format or run(detect_format, head)
    except ReportError as exc:
        raise Invalid(f"the report cannot be imported: {exc}", errors={"file": [str(exc)]}) from None
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.report"
    partial = directory / f"{name}.part"
    try:
        run(_copy_to, stream, partial)
        os.replace(partial, directory / name)
        record = FindingImport(
            site_id=site.id,
            user_id=user_id,
            source="api",
            format=report_format,
            scanner=report_format,  # the real names are known once the worker has read the report
            filename=stored_filename(filename),
            close_missing=bool(close_missing),
            state="queued",
            spool=name,
        )
        db.session.add(record)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for path in (partial, directory / name):
            path.unlink(missing_ok=True)
        raise
    log.info(
        "import %s site=%s format=%s file=%s queued for the sync worker: %d bytes",
        record.id,
        site.id,
        report_format,
        record.filename,
        size,
    )
    return record


def _stream_size(stream) -> int | None:
    """The size of a seekable upload (a spooled file), None when it cannot be told without reading."""
    try:
        position = stream.tell()
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(position)
    except (AttributeError, OSError, ValueError):
        return None
    return size - position


def _copy_to(stream, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(stream, out, HEAD_BYTES)


def reconcile_findings(site_id, scanner, findings, *, close_missing, import_id=None) -> dict:
    """Apply the dedup and re-import rules to `findings` (ParsedFinding of one `scanner`) on a site.

    Does not commit: the caller owns the transaction (which also holds the findings.new notification of
    the new and reopened ones). Returns {"created","reopened","unchanged","closed"}.
    """
    reconciler = FindingReconciler(site_id, import_id=import_id, label=f"{scanner} findings")
    for finding in findings:
        if finding.scanner != scanner:
            raise ValueError(f"a {finding.scanner} finding was given to reconcile_findings for {scanner}")
        reconciler.add(finding)
    reconciler.flush()
    if close_missing:
        reconciler.close_missing(scanner)
    site = db.session.get(Site, site_id)
    if site is not None:
        alert_events.findings_new(site, reconciler.new_by_severity, f"{scanner} checks")
    return reconciler.counts()


class FindingReconciler:
    """The rules applied batch by batch. One instance per import; one timestamp marks what it saw."""

    def __init__(self, site_id: int, import_id: int | None = None, label: str = "import"):
        self.site_id = site_id
        self.import_id = import_id
        self.label = label
        self.now: datetime = utcnow()
        self.created = self.reopened = self.unchanged = self.closed = 0
        self.new_by_severity: Counter = Counter()  # created and reopened, for findings.new
        self.processed = 0
        self._seen: set[str] = set()
        self._pending: dict[str, tuple[ParsedFinding, dict | None, str | None]] = {}
        self.literals: _RowLiterals | None = None  # new rows written as SQL by the parsing thread
        self._scanners: dict[str, bool] = {}  # scanner -> the site had findings of it before

    @property
    def distinct(self) -> int:
        return len(self._seen)

    def counts(self) -> dict:
        return {
            "created": self.created,
            "reopened": self.reopened,
            "unchanged": self.unchanged,
            "closed": self.closed,
        }

    def add(
        self,
        finding: ParsedFinding,
        key: str | None = None,
        cleaned: dict | None = None,
        literal: str | None = None,
    ) -> None:
        self.processed += 1
        if self.processed % PROGRESS_EVERY == 0:
            log.info("%s on site %s: %d findings read", self.label, self.site_id, self.processed)
        key = key or finding.dedup_key()
        if key in self._seen:
            return  # the same finding twice in one report (nuclei repeats a hit per matcher run)
        self._seen.add(key)
        self._pending[key] = (finding, cleaned, literal)
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        # Only the findings of scanners the site already had findings of can be known: a site's first
        # report of a scanner (its first import, a new tool) is written without looking anything up.
        lookup = [key for key, (finding, _, _) in batch.items() if self._had_findings_of(finding.scanner)]
        rows = (
            db.session.execute(
                sa.select(Finding.id, Finding.dedup_key, Finding.status, Finding.severity).where(
                    Finding.site_id == self.site_id, Finding.dedup_key.in_(lookup)
                )
            ).all()
            if lookup
            else []
        )
        known = {row.dedup_key: row for row in rows}
        new, literals, seen, fixed, triaged, fixed_severity = [], [], [], [], {}, {}
        for key, (finding, cleaned, literal) in batch.items():
            row = known.get(key)
            if row is None:
                if literal is not None:
                    literals.append(literal)
                    self.new_by_severity[cleaned["severity"]] += 1
                else:
                    new.append(self._new_row(key, finding, cleaned))
            elif finding.status in TRIAGED_STATUSES and row.status not in TRIAGED_STATUSES:
                triaged.setdefault(finding.status, []).append(row.id)
            elif row.status in ACTIVE_STATUSES:
                seen.append(row.id)
            elif row.status == "fixed":
                fixed.append(row.id)
                fixed_severity[row.id] = row.severity
            elif row.status in TRIAGED_STATUSES:
                self.unchanged += 1  # triaged by a person: the import leaves it exactly as it is
        if literals:
            self.literals.insert(literals)
            self.created += len(literals)
        if new:
            _bulk_insert(new)
            self.created += len(new)
            self.new_by_severity.update(row["severity"] for row in new)
        # The status conditions are re-checked by the UPDATE itself, so a finding triaged meanwhile by
        # a PATCH (READ COMMITTED: the UPDATE sees it) is left alone.
        if seen:
            self.unchanged += self._update(
                seen, ACTIVE_STATUSES, last_seen_at=self.now, last_import_id=self.import_id
            )
        if fixed:
            self.new_by_severity.update(fixed_severity.values())
            self.reopened += self._update(
                fixed,
                ("fixed",),
                status="open",
                fixed_at=None,
                last_seen_at=self.now,
                last_import_id=self.import_id,
            )
        for status, ids in triaged.items():  # seen, so counted unchanged, though now triaged
            self.unchanged += self._update(
                ids,
                (*ACTIVE_STATUSES, "fixed"),
                status=status,
                fixed_at=None,
                last_seen_at=self.now,
                last_import_id=self.import_id,
            )

    def _had_findings_of(self, scanner: str) -> bool:
        """Whether the site had findings of `scanner` before this reconciler wrote any (asked once per
        scanner, off the (site_id, scanner, status) index). What this reconciler writes itself needs no
        lookup: a report's repeats are caught by `_seen`, and imports into a site take turns."""
        had = self._scanners.get(scanner)
        if had is None:
            had = self._scanners[scanner] = (
                db.session.execute(
                    sa.select(Finding.id)
                    .where(Finding.site_id == self.site_id, Finding.scanner == scanner[: LIMITS["scanner"]])
                    .limit(1)
                ).first()
                is not None
            )
        return had

    def _update(self, ids: list[int], statuses: Iterable[str], **values) -> int:
        result = db.session.execute(
            sa.update(Finding.__table__)
            .where(Finding.id.in_(ids), Finding.status.in_(statuses))
            .values(updated_at=self.now, **values)
        )
        return result.rowcount

    def close_missing(self, scanner: str) -> int:
        """Fix the site's open/confirmed findings of `scanner` that this import did not see."""
        result = db.session.execute(
            sa.update(Finding.__table__)
            .where(
                Finding.site_id == self.site_id,
                Finding.scanner == scanner[: LIMITS["scanner"]],
                Finding.status.in_(ACTIVE_STATUSES),
                Finding.last_seen_at != self.now,
            )
            .values(status="fixed", fixed_at=self.now, updated_at=self.now)
        )
        self.closed += result.rowcount
        return result.rowcount

    def _new_row(self, key: str, finding: ParsedFinding, cleaned: dict | None = None) -> dict:
        row = cleaned if cleaned is not None else _cleaned(finding)
        row.update(
            site_id=self.site_id,
            dedup_key=key,
            note=None,
            first_seen_at=self.now,
            last_seen_at=self.now,
            fixed_at=None,
            last_import_id=self.import_id,
            created_at=self.now,
            updated_at=self.now,
        )
        return row


def _cleaned(finding: ParsedFinding) -> dict:
    """The values a new row takes from a finding: texts cut to their columns, severity and status checked."""
    severity = finding.severity if finding.severity in SEVERITIES else normalise_severity(finding.severity)
    rule_id = _clean(finding.rule_id, LIMITS["rule_id"]) or "unknown"
    return {
        "scanner": finding.scanner[: LIMITS["scanner"]],
        "rule_id": rule_id,
        "title": _clean(finding.title, LIMITS["title"]) or rule_id,
        "severity": severity,
        "severity_rank": SEVERITY_RANK[severity],
        "status": finding.status if finding.status in TRIAGED_STATUSES else "open",
        "host": _clean(finding.host, LIMITS["host"]) or "",
        "path": _clean(finding.path, LIMITS["path"]) or "",
        "param": _clean(finding.param, LIMITS["param"]) or "",
        "location": _clean(finding.location, LIMITS["location"]) or "",
        "description": _clean(finding.description, LIMITS["description"]),
        "cwe": _clean(finding.cwe, LIMITS["cwe"]),
        "references": [
            _clean(ref, LIMITS["reference"]) for ref in finding.references[:MAX_REFERENCES] if ref
        ],
        "evidence": _clean(finding.evidence, LIMITS["evidence"]),
    }


# The columns every new row of one reconciler batch shares (FindingReconciler._new_row): converted for the
# driver once per batch instead of once per row.
BATCH_CONSTANTS = frozenset(
    {
        "site_id",
        "note",
        "first_seen_at",
        "last_seen_at",
        "fixed_at",
        "last_import_id",
        "created_at",
        "updated_at",
    }
)


def _bulk_insert(rows: list[dict]) -> None:
    """Insert finding rows (of one FindingReconciler batch) with one driver-level executemany (a
    multi-row INSERT on MySQL).

    The statement is built once and the values go through the columns' own bind processors, which is
    what SQLAlchemy's executemany does too, minus its per-row parameter bookkeeping (about a third of
    the insert time for 100k rows); the values the rows share (BATCH_CONSTANTS) are converted once.
    """
    connection = db.session.connection()
    writer = _row_writer(connection.dialect)
    if writer is None:
        db.session.execute(sa.insert(Finding.__table__), rows)
        return
    statement, plain, processed, constants = writer
    first = rows[0]
    shared = tuple(process(first[name]) if process else first[name] for name, process in constants)
    take = operator.itemgetter(*plain)
    connection.exec_driver_sql(
        statement,
        [take(row) + tuple(process(row[name]) for name, process in processed) + shared for row in rows],
    )


class _RowLiterals:
    """New finding rows as SQL text, `(v1, v2, ...)`, escaped by PyMySQL's own connection (the escaping
    a parameterised executemany does, with the same rules: charset, NO_BACKSLASH_ESCAPES), so that the
    parsing thread can do it; `insert` sends them as multi-row INSERTs of at most MAX_STATEMENT bytes."""

    MAX_STATEMENT = 1_000_000  # PyMySQL's own bound for an executemany statement

    @classmethod
    def of(cls, connection, reconciler) -> "_RowLiterals | None":
        try:
            import pymysql
        except ImportError:
            return None
        dbapi = connection.connection.dbapi_connection
        writer = _row_writer(connection.dialect)
        if writer is None or not isinstance(dbapi, pymysql.connections.Connection):
            return None
        return cls(dbapi, writer, reconciler)

    def __init__(self, dbapi, writer, reconciler):
        statement, plain, processed, constants = writer
        self.prefix = statement[: statement.index(" VALUES ")] + " VALUES "
        self.escape = dbapi.escape
        self.scanners = reconciler._scanners  # filled by the importing thread as it meets them
        self.take = operator.itemgetter(*plain)
        self.processed = processed
        shared = reconciler._new_row("", None, {})  # the values every new row of this reconciler has
        self.shared = ",".join(
            self.escape(process(shared[name]) if process else shared[name]) for name, process in constants
        )

    def wanted(self, finding: ParsedFinding) -> bool:
        """Whether the finding may well be new: not when the site had findings of its scanner before (a
        re-import: most are known, and a new one among them goes through `executemany`)."""
        return self.scanners.get(finding.scanner) is not True

    def row(self, key: str, cleaned: dict) -> str:
        values = {**cleaned, "dedup_key": key}
        parts = [self.escape(value) for value in self.take(values)]
        parts.extend(self.escape(process(values[name])) for name, process in self.processed)
        return f"({','.join(parts)},{self.shared})"

    def insert(self, literals: list[str]) -> None:
        connection = db.session.connection()
        plain = {"no_parameters": True}  # cursor.execute(sql): no %-formatting of the values' text
        chunk, size = [], len(self.prefix)
        for literal in literals:
            if chunk and size + len(literal) + 1 > self.MAX_STATEMENT:
                connection.exec_driver_sql(self.prefix + ",".join(chunk), execution_options=plain)
                chunk, size = [], len(self.prefix)
            chunk.append(literal)
            size += len(literal) + 1
        if chunk:
            connection.exec_driver_sql(self.prefix + ",".join(chunk), execution_options=plain)


@functools.cache
def _row_writer(dialect) -> tuple | None:
    """(statement, plain columns, (column, bind processor) of the others, and of the shared ones)."""
    placeholder = {"format": "%s", "pyformat": "%s", "qmark": "?"}.get(dialect.paramstyle)
    if placeholder is None:
        return None
    quote = dialect.identifier_preparer.quote
    table = Finding.__table__
    plain, processed, constants = [], [], []
    for column in table.columns:
        if column.name == "id":
            continue
        process = column.type.bind_processor(dialect)
        if column.name in BATCH_CONSTANTS:
            constants.append((column.name, process))
        elif process is None:
            plain.append(column.name)
        else:
            processed.append((column.name, process))
    names = plain + [name for name, _ in processed] + [name for name, _ in constants]
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join([placeholder] * len(names))})"
    )
    return statement, plain, processed, constants


def _clean(value, limit: int) -> str | None:
    """Text the database stores as given: cut to the column, no NUL, no lone surrogates."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if len(text) > limit:
        text = text[:limit]
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def stored_filename(name: str | None) -> str | None:
    """The report's name as an import records it: the base name, cut to the column."""
    if not name:
        return None
    base = os.path.basename(name.replace("\\", "/"))
    return _clean(base, LIMITS["filename"]) or None


class _ReportBytes(io.RawIOBase):
    """The uploaded bytes as they are read: counted (MAX_REPORT_BYTES) and hashed (file_sha256)."""

    def __init__(self, stream, limit: int | None):
        self._stream = stream
        self._limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        if not data:
            return 0
        if not isinstance(data, bytes | bytearray):
            raise TypeError("import_report needs a binary stream")
        size = len(data)
        self.size += size
        if self._limit and self.size > self._limit:
            raise ReportTooLarge(f"the report is larger than the limit of {self._limit} bytes")
        self.sha256.update(data)
        buffer[:size] = data
        return size


@contextlib.contextmanager
def _import_lock(site_id: int):
    """One import at a time per site (MySQL named lock on its own connection; SQLite writes serialise).

    A named lock rather than a row lock on the site: the worker keeps updating the site's row
    (state, next check) while a long import runs.
    """
    engine = db.session.get_bind()
    if engine.dialect.name != "mysql":
        yield
        return
    with mysql_named_lock(engine, lock_name("cloudeye:import:", engine, str(site_id)), LOCK_TIMEOUT_S) as got:
        if not got:
            raise Conflict("another import into this site is still running; try again later")
        yield
