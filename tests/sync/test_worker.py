"""The worker's threads in-process: what a stopping worker still owes before its threads may exit."""

import queue
import threading
import time
from datetime import UTC, datetime, timedelta

from services.extensions import db
from services.models import Site
from sync import worker as worker_module


def wait_for(condition, timeout_s=60.0, what="condition"):
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def test_follow_ups_of_the_last_batch_are_done_before_a_stopping_worker_exits(
    app, operator, worker, web, monkeypatch
):
    # A batch leaves the in-flight set once stored, and only then are its follow-ups queued: a follow-up
    # thread that looks in between must not conclude that nothing is left and exit.
    response = operator.post("/sites", json={"name": "s", "url": web.set("/")})  # no security headers
    site_id = response.get_json()["id"]
    assert worker.claim_and_start()[0] == 1
    wait_for(lambda: worker._results.qsize() == 1, what="the probe's result")
    worker.stop()

    between = threading.Event()
    go_on = threading.Event()
    real_follow_ups_to_run = worker_module.follow_ups_to_run

    def follow_ups_to_run(outcomes):
        between.set()  # stored, out of the in-flight set, follow-up not queued yet
        go_on.wait(120)
        return real_follow_ups_to_run(outcomes)

    monkeypatch.setattr(worker_module, "follow_ups_to_run", follow_ups_to_run)
    empty_polls = []
    real_get = worker._followups.get

    def get(*args, **kwargs):
        try:
            return real_get(*args, **kwargs)
        except queue.Empty:
            empty_polls.append(1)
            raise

    monkeypatch.setattr(worker._followups, "get", get)

    def write():
        with app.app_context():
            try:
                worker.write_pending(inline=False)
            finally:
                db.session.remove()

    writer = threading.Thread(target=write, daemon=True)
    follower = threading.Thread(target=worker._followup_loop, daemon=True)
    writer.start()
    try:
        assert between.wait(60)
        follower.start()
        wait_for(lambda: len(empty_polls) >= 2, what="the follow-up thread to keep waiting")
    finally:
        go_on.set()
    writer.join(60)
    follower.join(60)
    assert not writer.is_alive() and not follower.is_alive()
    assert worker.totals.findings_reconciled == 1
    found = operator.get(f"/bugs?site_id={site_id}&scanner=cloudeye").get_json()
    assert found["total"] > 0


def _site_due_in(owner, url: str, seconds: float):
    from tests.factories import create_site

    return create_site(owner, url=url, next_check_at=datetime.now(UTC) + timedelta(seconds=seconds))


def test_a_check_claimed_ahead_starts_at_its_due_time(app, operator, worker, web):
    site = _site_due_in(operator.user, web.set("/"), 1.0)
    due_at = site.next_check_at
    assert worker.claim_and_start(ahead_s=3)[0] == 1
    dispatcher = threading.Thread(target=worker._dispatch_loop, daemon=True)
    dispatcher.start()
    try:
        assert web.hits["/"] == 0 and worker.in_flight() == 1  # claimed, waiting for its time
        wait_for(lambda: worker._results.qsize() == 1, what="the probe at its due time")
        outcome = worker._results.get_nowait()
        assert outcome.result.started_at >= due_at and outcome.result.up
    finally:
        worker.stop()
        dispatcher.join(10)


def test_a_stopping_worker_gives_back_at_once_the_checks_it_claimed_ahead(app, operator, worker):
    site = _site_due_in(operator.user, "http://127.0.0.1:9/", 20)
    due_at = site.next_check_at
    assert worker.claim_and_start(ahead_s=30)[0] == 1
    db.session.expire_all()
    assert db.session.get(Site, site.id).claimed_until is not None
    dispatcher = threading.Thread(target=worker._dispatch_loop, daemon=True)
    dispatcher.start()
    worker.stop()
    dispatcher.join(10)
    assert not dispatcher.is_alive() and worker.in_flight() == 0
    db.session.expire_all()
    row = db.session.get(Site, site.id)
    assert row.claimed_until is None and row.next_check_at == due_at  # the same slot, for anyone
