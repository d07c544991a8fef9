"""Delivering the notification outbox: claim due rows, send them, record what happened.

A thread of its own in the worker (`Notifier.run`), with its own small pool of NOTIFY_CONCURRENCY
sending threads, so a slow or dead receiver holds one sending slot and never a probe:

1. **Claim** (this thread, one short transaction): up to the free sending slots, due rows under a lease
   (`services.alerts.outbox.claim`: SKIP LOCKED on MariaDB/MySQL, so replicas share the outbox without
   sending a row twice; the channel and the owner's view of the site are checked again here).
2. **Send** (the pool; network only, never the database): `services.transports.deliver`, every connect
   and read bounded by NOTIFY_TIMEOUT_S.
3. **Record** (this thread, batched): sent; or the next attempt after a doubling backoff; or failed after
   8 attempts, with the last error kept (`outbox.record`).

Every ALERTS_TICK_INTERVAL_S it also runs `services.alerts.events.tick` (reminders, flapping that
settled, downs held back by maintenance), on one replica at a time.

A worker killed mid-send leaves its claims to expire (NOTIFY_LEASE_S); the rows are then sent again by
whichever worker claims them: at least once, never lost, the same delivery_id on both sends.
"""

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from services import transports
from services.alerts import events, outbox
from services.extensions import db

log = logging.getLogger(__name__)
RECORD_BATCH = 200


class Notifier:
    def __init__(self, app: Flask, worker_id: str, stopping: threading.Event | None = None):
        config = app.config
        self.app = app
        self.worker_id = worker_id
        self.stopping = stopping or threading.Event()
        self.concurrency = max(1, int(config["NOTIFY_CONCURRENCY"]))
        self.timeout_s = max(0.1, float(config["NOTIFY_TIMEOUT_S"]))
        self.backoff_base_s = max(0.0, float(config["NOTIFY_BACKOFF_BASE_S"]))
        # A lease outlives the longest send (connect + read, each bounded) with room to record it.
        self.lease_s = max(float(config["NOTIFY_LEASE_S"]), 2 * self.timeout_s + 5)
        self.poll_s = max(0.05, float(config["NOTIFY_POLL_INTERVAL_S"]))
        self.tick_s = max(0.1, float(config["ALERTS_TICK_INTERVAL_S"]))
        self.public_url = config.get("CLOUDEYE_PUBLIC_URL")
        self.allow_private = bool(config.get("ALLOW_PRIVATE_TARGETS", True))
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="notify")
        self._outcomes: queue.Queue[outbox.Outcome] = queue.Queue()
        self._lock = threading.Lock()
        self._sending = 0
        self._wake = threading.Event()
        self.totals = {"sent": 0, "retry": 0, "failed": 0, "lost": 0}

    # --- one step of each part (what the loop and the tests call) -------------------------------------

    def claim_and_send(self) -> int:
        """Claim as many due rows as there are free sending slots and start sending them."""
        with self._lock:
            free = self.concurrency * 2 - self._sending  # a short queue per thread keeps them busy
        if free <= 0 or self.stopping.is_set():
            return 0
        deliveries = outbox.claim(free, self.lease_s, self.worker_id, self.public_url)
        for delivery in deliveries:
            with self._lock:
                self._sending += 1
            self._pool.submit(self._send, delivery)
        return len(deliveries)

    def _send(self, delivery: outbox.Delivery) -> None:
        try:
            transports.deliver(delivery, self.timeout_s, self.allow_private)
            error = None
        except transports.SendError as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a transport: keep the row for a retry, say what it was
            log.exception("sending notification %s crashed", delivery.notification_id)
            error = f"internal error: {type(exc).__name__}"
        self._outcomes.put(outbox.Outcome(delivery, error))
        with self._lock:
            self._sending -= 1
        self._wake.set()

    def record_finished(self) -> dict:
        """Record every finished send waiting in the queue."""
        outcomes = []
        try:
            while len(outcomes) < RECORD_BATCH:
                outcomes.append(self._outcomes.get_nowait())
        except queue.Empty:
            pass
        counts = outbox.record(outcomes, self.worker_id, self.backoff_base_s)
        for name, count in counts.items():
            self.totals[name] += count
        return counts

    def sending(self) -> int:
        with self._lock:
            return self._sending + self._outcomes.qsize()

    def run_once(self, timeout_s: float = 60.0, tick: bool = True) -> dict:
        """Tick, then claim, send and record until nothing is due (in the caller's app context): for
        tests and --once. Returns the counts of what was recorded."""
        if tick:
            events.tick()
        totals = {"sent": 0, "retry": 0, "failed": 0, "lost": 0}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            claimed = self.claim_and_send()
            if not claimed and not self.sending():
                break
            while self.sending() and time.monotonic() < deadline:
                self._wake.wait(0.05)
                self._wake.clear()
                for name, count in self.record_finished().items():
                    totals[name] += count
        return totals

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- the long-running thread ------------------------------------------------------------------------

    def run(self, grace_s: float = 25.0) -> None:
        with self.app.app_context():
            next_tick = time.monotonic()
            while not self.stopping.is_set():
                if time.monotonic() >= next_tick:
                    self._guarded("alerts tick", events.tick)
                    next_tick = time.monotonic() + self.tick_s
                self._guarded("recording deliveries", self._record_all)
                claimed = self._guarded("claiming notifications", self.claim_and_send) or 0
                self._wake.clear()
                if not claimed:
                    self._wake.wait(self.poll_s)
            # Stopping: no new claims; sends in flight finish (each is bounded) and are recorded.
            deadline = time.monotonic() + grace_s
            while self.sending() and time.monotonic() < deadline:
                self._wake.wait(0.1)
                self._wake.clear()
                self._guarded("recording deliveries", self._record_all)
            self._guarded("recording deliveries", self._record_all)
            self._pool.shutdown(wait=False, cancel_futures=True)
            log.info("notifier stopped: %s", self.totals)

    def _record_all(self) -> None:
        while not self._outcomes.empty():
            self.record_finished()

    def _guarded(self, what: str, job):
        try:
            return job()
        except Exception as exc:
            log.error(
                "%s failed: %s", what, str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            )
            db.session.rollback()
            time.sleep(min(1.0, self.poll_s))
            return None
        finally:
            db.session.remove()
