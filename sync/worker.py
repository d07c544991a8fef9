"""The sync worker: claims due checks, probes concurrently, writes results in batches, ingests the report
inbox, applies retention, publishes a heartbeat, and stops cleanly on SIGTERM.

Threads, each with its own app context (so its own database session):
- main: claims due checks, and those due within 2 poll intervals (as many as there are free probe slots,
  plus room for 2 x SYNC_CONCURRENCY waiting), heartbeat, progress log;
- dispatch: starts each claimed check at its due time, as probe slots free up;
- probe-N (SYNC_CONCURRENCY of them): network only, never the database;
- writer-N (2): store finished probes in batches (sync/results.py);
- follow-up-N (4): tamper checks and built-in findings of the stored answers;
- inbox, imports (the big reports queued by the API, sync/imports.py) and retention: periodic jobs;
- notify, with its own pool of NOTIFY_CONCURRENCY sending threads: the notification outbox and the alerts
  tick (sync/notify.py), so a slow receiver never holds a probe.
Probes do network I/O and release the GIL while waiting, so one slow or dead site only holds one slot;
CPU-heavy work (a big report import, a big page diff) does not freeze the probes the way it would in a
single-threaded event loop.

Shutdown (SIGTERM/SIGINT): stop claiming and stop picking inbox files, let running probes, queued
results and the current inbox import finish within SYNC_GRACE_PERIOD_S (a queued import from the API
stops at its next batch and goes back to the queue), give back the claims of probes that
did not finish (they are due again at once for the other workers), remove the heartbeat, exit 0.
"""

import heapq
import itertools
import logging
import queue
import signal
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from flask import Flask

from services import locations, scheduler, search
from services.extensions import db
from sync import heartbeat, retention
from sync.imports import ImportQueue
from sync.inbox import Inbox
from sync.notify import Notifier
from sync.probe import Prober, ProbeResult, make_ssl_context, target_of
from sync.results import BatchReport, Outcome, follow_up, follow_ups_to_run, store

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 60
# Writers store disjoint batches (a site is in one batch at a time; rows are locked in id order), so
# several overlap their database round trips.
WRITER_THREADS = 2
FOLLOWUP_THREADS = 4  # tamper diffs and built-in findings, off the writers' path
# A writer thread that finds fewer results than a batch waits this long for more: fewer, fuller batches
# (statements and commits per check) at the cost of recording (not checking) a little later.
BATCH_WAIT_S = 0.2
# Claims waiting for their due time (or a free probe slot), at most this many times SYNC_CONCURRENCY.
AHEAD_SLOTS = 2
# Checks claimed later than this after their due time: the worker is behind, follow-ups wait.
LATE_S = 2.0


class Worker:
    def __init__(self, app: Flask):
        config = app.config
        self.app = app
        self.worker_id = config.get("SYNC_WORKER_ID") or heartbeat.default_worker_id()
        self.location = config["CLOUDEYE_LOCATION"]
        self.concurrency = max(1, int(config["SYNC_CONCURRENCY"]))
        self.poll_s = max(0.05, float(config["SYNC_POLL_INTERVAL_S"]))
        self.grace_s = max(0.0, float(config["SYNC_GRACE_PERIOD_S"]))
        self.lease_margin_s = max(1, int(config["SYNC_LEASE_MARGIN_S"]))
        self.batch_size = max(1, int(config["SYNC_BATCH_SIZE"]))
        self.max_unwritten = self.concurrency + 4 * self.batch_size
        self.heartbeat_ttl_s = max(3, int(config["SYNC_HEARTBEAT_TTL_S"]))
        self.inbox_interval_s = max(0.2, float(config["SYNC_INBOX_INTERVAL_S"]))
        self.retention_interval_s = max(1.0, float(config["SYNC_RETENTION_INTERVAL_S"]))
        self.search_interval_s = max(0.2, float(config["SYNC_SEARCH_INTERVAL_S"]))
        self.retention_days = int(config["USABILITY_RETENTION_DAYS"])
        self.hourly_rollup_days = int(config["USABILITY_HOURLY_ROLLUP_DAYS"])
        self.findings_refresh_s = int(config["SYNC_FINDINGS_REFRESH_S"])
        self.notifications_retention_days = int(config["NOTIFICATIONS_RETENTION_DAYS"])
        self.prober = Prober(
            make_ssl_context(config.get("SYNC_CA_FILE")),
            int(config["SYNC_MAX_BODY_BYTES"]),
            allow_private=bool(config.get("ALLOW_PRIVATE_TARGETS", True)),
        )
        self.inbox = Inbox(
            config["DATA_DIR"],
            settle_s=float(config["SYNC_INBOX_SETTLE_S"]),
            max_bytes=int(config["MAX_REPORT_BYTES"]),
        )

        self.imports = ImportQueue(config["DATA_DIR"], int(config["IMPORT_MAX_ATTEMPTS"]))  # sync/imports.py
        self.stopping = threading.Event()
        self.notifier = Notifier(app, self.worker_id, self.stopping)
        self._wake = threading.Event()  # a probe slot freed up
        self._lock = threading.Lock()
        self._probing: set[tuple] = set()  # Claim.key of the probes running
        self._unwritten: dict[tuple, scheduler.Claim] = {}  # claimed, result not stored yet
        self._writing = 0  # batches taken by a writer whose follow-ups are not queued yet
        self._results: queue.Queue[Outcome] = queue.Queue()
        self._followups: queue.Queue[Outcome] = queue.Queue(maxsize=max(100, 2 * self.batch_size))
        self._followups_dropped = 0
        # Set while the checks being claimed are late: follow-ups wait (checks come first).
        self._checks_late = threading.Event()
        self._claim_times: list[float] = []  # seconds per claim batch, for the progress log
        self._executor: ThreadPoolExecutor | None = None
        # Claimed ahead of their due time, not started yet: a heap of (due_at, n, claim), the dispatch
        # thread's (SYNC_POLL_INTERVAL_S x 2 ahead, so a slow claim query never makes checks late).
        self._ahead: list[tuple[datetime, int, scheduler.Claim]] = []
        self._sequence = itertools.count()
        self._dispatch = threading.Condition(self._lock)
        self.ahead_s = max(1.0, 2 * self.poll_s)
        self.totals = BatchReport()
        self._progress = BatchReport()
        self.started_at = datetime.now(UTC)

    # --- one step of each job (also what the tests drive) ------------------------------------------

    def claim_and_start(self, ahead_s: float = 0.0) -> tuple[int, int]:
        """Claim as many due checks as there are free probe slots and start probing them; with `ahead_s`
        (the running worker), also the checks due within that many seconds, up to AHEAD_SLOTS x
        concurrency more, which the dispatch thread starts at their due time. Returns (claimed, limit): claimed == limit
        means more may be due."""
        with self._lock:
            # Free probe slots (and room ahead), and no more than the writer can absorb: when the
            # database is slow, claims wait (lateness shows it) instead of results piling up past their
            # leases.
            room = self.concurrency - len(self._probing)
            if ahead_s > 0:
                room += AHEAD_SLOTS * self.concurrency - len(self._ahead)
            limit = min(room, self.max_unwritten - len(self._unwritten))
        if limit <= 0 or self.stopping.is_set():
            return 0, limit
        began = time.monotonic()
        claims = scheduler.claim_due(limit, self.lease_margin_s, self.location, ahead_s=ahead_s)
        with self._lock:
            self._claim_times.append(time.monotonic() - began)
            for claim in claims:
                self._unwritten[claim.key] = claim
                if ahead_s > 0:
                    heapq.heappush(self._ahead, (claim.due_at, next(self._sequence), claim))
                else:
                    self._start(claim)
            if ahead_s > 0:
                self._dispatch.notify()
            else:
                self._note_lateness(claims[0] if claims else None)
        return len(claims), limit

    def _start(self, claim: scheduler.Claim) -> None:
        """Hand a claim to a probe thread (under self._lock)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="probe")
        self._probing.add(claim.key)
        self._executor.submit(self._probe, claim)

    def _note_lateness(self, oldest: scheduler.Claim | None) -> None:
        """Follow-ups wait while checks start more than LATE_S after their due time."""
        if oldest is not None and (datetime.now(UTC) - oldest.due_at).total_seconds() > LATE_S:
            self._checks_late.set()
        else:
            self._checks_late.clear()

    def _dispatch_loop(self) -> None:
        """Start each claimed-ahead check at its due time, as probe slots allow. When stopping, give the
        ones not started back at once (due again for the other replicas)."""
        with self.app.app_context():
            with self._lock:
                while not self.stopping.is_set():
                    now = datetime.now(UTC)
                    started = None
                    while self._ahead and self._ahead[0][0] <= now and len(self._probing) < self.concurrency:
                        claim = heapq.heappop(self._ahead)[2]
                        if now + timedelta(seconds=claim.timeout_s) >= claim.claimed_until:
                            # Waited so long for a slot that its lease would run out during the probe:
                            # leave it to expire (claimed again, by any replica, for the same slot).
                            self._unwritten.pop(claim.key, None)
                            continue
                        started = claim
                        self._start(claim)
                    if started is not None:
                        self._note_lateness(started)
                    if self._ahead and self._ahead[0][0] <= now:
                        wait = 0.01  # every slot busy: one frees up when a probe ends
                    elif self._ahead:
                        wait = min(0.5, (self._ahead[0][0] - now).total_seconds())
                    else:
                        wait = 0.5
                    self._dispatch.wait(wait)
                unstarted = [claim for _, _, claim in self._ahead]
                self._ahead.clear()
                for claim in unstarted:
                    self._unwritten.pop(claim.key, None)
            if unstarted:
                try:
                    scheduler.release(unstarted)
                except Exception as exc:
                    log.error(
                        "could not give back %d claims (they expire by themselves): %s", len(unstarted), exc
                    )
                    db.session.rollback()
                finally:
                    db.session.remove()

    def _probe(self, claim: scheduler.Claim) -> None:
        try:
            result = self.prober.probe(target_of(claim))
        except BaseException as exc:  # the prober classifies errors; this is a bug, keep the slot anyway
            log.exception("probe of site %s crashed", claim.site_id)
            result = ProbeResult(datetime.now(UTC), False, failure_kind="other", reason=repr(exc)[:500])
        self._results.put(Outcome(claim, result))
        with self._lock:
            self._probing.discard(claim.key)
        self._wake.set()

    def write_pending(self, block_s: float = 0.0, inline: bool = True) -> BatchReport:
        """Store up to one batch of finished probes (waiting up to `block_s` for the first one), then
        their follow-ups (tamper, findings): here, or queued for the follow-up threads (`inline=False`)."""
        batch: list[Outcome] = []
        try:
            batch.append(self._results.get(timeout=block_s) if block_s > 0 else self._results.get_nowait())
            if not inline and self._results.qsize() < self.batch_size - 1:
                self.stopping.wait(BATCH_WAIT_S)
            while len(batch) < self.batch_size:
                batch.append(self._results.get_nowait())
        except queue.Empty:
            pass
        if not batch:
            return BatchReport()
        with self._lock:
            self._writing += 1
        try:
            return self._write(batch, inline)
        finally:
            with self._lock:
                self._writing -= 1

    def _write(self, batch: list[Outcome], inline: bool) -> BatchReport:
        try:
            report = store(batch)
        finally:
            with self._lock:
                for outcome in batch:
                    self._unwritten.pop(outcome.claim.key, None)
        stored, report.outcomes = report.outcomes, []
        self._count(report)
        for outcome in follow_ups_to_run(stored):
            if inline:
                done = follow_up(outcome, self.findings_refresh_s)
                self._count(done)
                report.add(done)
                continue
            try:
                self._followups.put_nowait(outcome)
            except queue.Full:
                # Behind on follow-ups: skip this one, the site's next check does it (nothing is
                # remembered for it, so its findings are reconciled then).
                with self._lock:
                    self._followups_dropped += 1
        return report

    def _count(self, report: BatchReport) -> None:
        with self._lock:
            self.totals.add(report, samples=False)  # counts only: it lives as long as the process
            self._progress.add(report)  # the lateness samples of one progress period

    def run_once(self, timeout_s: float = 60.0) -> BatchReport:
        """Claim everything due (up to the concurrency), probe it, store it: one pass, in the caller's
        app context. For tests and one-off runs; `run` is the long-running loop."""
        report = BatchReport()
        self.claim_and_start()
        deadline = time.monotonic() + timeout_s
        while self.in_flight() and time.monotonic() < deadline:
            report.add(self.write_pending(block_s=0.1))
        report.add(self.write_pending())
        return report

    def close(self) -> None:
        """Wait for running probes and sends and free their threads (tests; `run` exits the process)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.notifier.close()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._unwritten)

    def beat(self) -> None:
        with self._lock:
            info = {
                "in_flight": len(self._unwritten),
                "checks_stored": self.totals.stored,
                "started_at": self.started_at.isoformat(),
            }
        locations.beat(self.worker_id, self.location, info, self.heartbeat_ttl_s)

    # --- the long-running process --------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def _stop(signum, _frame):
            if not self.stopping.is_set():
                log.info(
                    "%s received: finishing in-flight work (grace %.0f s)",
                    signal.Signals(signum).name,
                    self.grace_s,
                )
            self.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def run(self) -> int:
        log.info(
            "sync worker %s of location %s starting: concurrency %d, poll %.1f s, batch %d, inbox %s",
            self.worker_id,
            self.location,
            self.concurrency,
            self.poll_s,
            self.batch_size,
            self.inbox.root,
        )
        helpers = (
            [
                threading.Thread(target=self._writer_loop, name=f"writer-{n}", daemon=True)
                # SQLite has one writer anyway: a second thread would only wait for its lock.
                for n in range(
                    1 if self.app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else WRITER_THREADS
                )
            ]
            + [
                threading.Thread(target=self._followup_loop, name=f"follow-up-{n}", daemon=True)
                for n in range(FOLLOWUP_THREADS)
            ]
            + [threading.Thread(target=self._dispatch_loop, name="dispatch", daemon=True)]
        )
        threads = [
            threading.Thread(
                target=self._periodic,
                args=("inbox", self.inbox_interval_s, 0.0, lambda: self.inbox.run(self.stopping)),
                name="inbox",
                daemon=True,
            ),
            threading.Thread(target=self.notifier.run, args=(self.grace_s,), name="notify", daemon=True),
            threading.Thread(
                target=self._periodic,
                args=("imports", self.inbox_interval_s, 0.0, lambda: self.imports.run(self.stopping)),
                name="imports",
                daemon=True,
            ),
            threading.Thread(
                target=self._periodic,
                args=("retention", self.retention_interval_s, 30.0, self._retention),
                name="retention",
                daemon=True,
            ),
            threading.Thread(
                target=self._periodic,
                # New findings into the search index, off the imports' path (services/search.py).
                args=("search index", self.search_interval_s, 1.0, self._search_index),
                name="search-index",
                daemon=True,
            ),
        ]
        for thread in helpers + threads:
            thread.start()
        with self.app.app_context():
            self._main_loop()
            return self._shutdown(helpers + threads[:3])  # retention needs no waiting for

    def _main_loop(self) -> None:
        next_beat = 0.0
        next_progress = time.monotonic() + PROGRESS_EVERY_S
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_beat:
                try:
                    self.beat()
                except Exception as exc:
                    log.warning("heartbeat failed: %s", exc)
                    db.session.rollback()
                next_beat = now + max(1.0, self.heartbeat_ttl_s / 3)
            if now >= next_progress:
                self._log_progress()
                next_progress = now + PROGRESS_EVERY_S
            try:
                claimed, limit = self.claim_and_start(self.ahead_s)
            except Exception as exc:
                log.error("claiming due checks failed: %s", str(exc).splitlines()[0][:300])
                db.session.rollback()
                claimed, limit = 0, 1
            finally:
                db.session.remove()
            self._wake.clear()
            if claimed and claimed >= limit:
                # Every slot is busy and more may be due: claim again as soon as slots free up, after a
                # short pause so that one claim query serves several freed slots.
                self._wake.wait(self.poll_s)
                self.stopping.wait(0.02)
            else:
                self.stopping.wait(self.poll_s)

    def _writer_loop(self) -> None:
        with self.app.app_context():
            while not (self.stopping.is_set() and self.in_flight() == 0):
                try:
                    self.write_pending(block_s=0.5, inline=False)
                except Exception:
                    log.exception("writing results failed")
                    time.sleep(1)
                finally:
                    db.session.remove()

    def _followup_loop(self) -> None:
        with self.app.app_context():
            while True:
                try:
                    outcome = self._followups.get(timeout=0.5)
                except queue.Empty:
                    if self.stopping.is_set() and self._nothing_left_to_follow_up():
                        return
                    continue
                # Checks come first: while they are claimed late or more than a batch of results waits
                # for the writers, follow-ups wait (their queue fills up, and the writers skip the
                # surplus, done on a later check). A burst of first findings reconciliations (many new
                # sites at once) then does not make checks late.
                while (
                    self._checks_late.is_set() or self._results.qsize() >= self.batch_size
                ) and not self.stopping.wait(0.05):
                    pass
                try:
                    self._count(follow_up(outcome, self.findings_refresh_s))
                except Exception:
                    log.exception("follow-up of site %s failed", outcome.claim.site_id)
                finally:
                    db.session.remove()

    def _nothing_left_to_follow_up(self) -> bool:
        """No result waits for a writer and no writer is still queueing follow-ups (a batch leaves
        `_unwritten` when stored, before its follow-ups are queued)."""
        with self._lock:
            writing = self._writing or self._unwritten
        return not writing and self._results.empty() and self._followups.empty()

    def _periodic(self, name: str, interval_s: float, first_delay_s: float, job) -> None:
        with self.app.app_context():
            if self.stopping.wait(first_delay_s):
                return
            while not self.stopping.is_set():
                try:
                    job()
                except Exception:
                    log.exception("%s job failed", name)
                    db.session.rollback()
                finally:
                    db.session.remove()
                self.stopping.wait(interval_s)

    def _search_index(self) -> None:
        # Not while this worker imports a report: the indexer's Python (trigrams of every new text)
        # shares the interpreter with the import and slowed a 100,000-finding import by half (its
        # findings are searched through the unindexed tail until the indexer catches up).
        search.index_pending(
            budget_s=max(1.0, self.search_interval_s * 4), pause=self.imports.importing.is_set
        )

    def _retention(self) -> None:
        retention.run(self.retention_days, self.hourly_rollup_days, self.notifications_retention_days)

    def _shutdown(self, threads: list[threading.Thread]) -> int:
        deadline = time.monotonic() + self.grace_s
        log.info("sync worker %s stopping: %d checks in flight", self.worker_id, self.in_flight())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            abandoned = list(self._unwritten.values())
        if abandoned:
            try:
                released = scheduler.release(abandoned)
                if released:
                    log.warning("grace period over: gave back %d unfinished checks", released)
            except Exception as exc:
                log.error(
                    "could not give back %d claims (they expire by themselves): %s", len(abandoned), exc
                )
                db.session.rollback()
        if any(thread.is_alive() for thread in threads):
            log.warning("grace period over with work still running; it will be retried")
        try:
            locations.clear(self.worker_id, self.location)
        except Exception as exc:
            log.warning("could not remove the heartbeat (it expires by itself): %s", exc)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._log_progress()
        log.info("sync worker %s stopped (%d checks stored since start)", self.worker_id, self.totals.stored)
        return 0

    def _log_progress(self) -> None:
        with self._lock:
            progress, self._progress = self._progress, BatchReport()
            in_flight = len(self._unwritten)
            dropped, self._followups_dropped = self._followups_dropped, 0
            claim_times, self._claim_times = sorted(self._claim_times), []
        if dropped:
            log.warning(
                "follow-ups behind: skipped %d tamper/findings follow-ups (done on the next checks)", dropped
            )
        late = sorted(progress.lateness_s)
        lateness = (
            f"lateness p50 {statistics.median(late):.2f} s, p95 {late[int(0.95 * (len(late) - 1))]:.2f} s, "
            f"max {late[-1]:.2f} s"
            if late
            else "no checks"
        )
        claiming = (
            f"{len(claim_times)} claim batches, p50 {1000 * statistics.median(claim_times):.0f} ms, "
            f"max {1000 * claim_times[-1]:.0f} ms"
            if claim_times
            else "no claim batches"
        )
        log.info(
            "progress: %d checks stored, %d skipped, %d failed, tamper %s, findings reconciled %d; %s; %s; "
            "in flight %d",
            progress.stored,
            progress.skipped,
            progress.failed,
            progress.tamper or "-",
            progress.findings_reconciled,
            lateness,
            claiming,
            in_flight,
        )
