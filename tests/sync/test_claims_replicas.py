"""Claims made ahead of the due time, batch writes of the sites' rows, and several replicas sharing the
sites through the claims: every slot checked once, none twice."""

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services import scheduler
from services.extensions import db
from services.models import Incident, Site, UsabilityCheck
from sync.probe import ProbeResult
from sync.results import Outcome, store
from tests import settings
from tests.factories import create_site, create_user


def _result(up=True, at=None):
    return ProbeResult(
        started_at=at or datetime.now(UTC),
        up=up,
        http_status=200 if up else 503,
        response_ms=5.0,
        failure_kind=None if up else "status",
        reason=None if up else "HTTP 503",
    )


def test_claiming_ahead_takes_the_checks_due_within_the_horizon_with_a_lease_that_covers_the_wait(ctx):
    owner = create_user("operator")
    now = datetime.now(UTC)
    due_now, soon, later = (
        create_site(owner, url="http://127.0.0.1:9/", next_check_at=now + timedelta(seconds=offset))
        for offset in (-1, 1, 10)
    )
    claims = scheduler.claim_due(10, 30, ahead_s=3, now=now)
    assert [c.site_id for c in claims] == [due_now.id, soon.id]
    for claim in claims:
        assert claim.due_at == db.session.get(Site, claim.site_id).next_check_at  # the slot, unchanged
        assert claim.claimed_until == now + timedelta(seconds=3 + claim.timeout_s + 30)
    # Claimed: nobody else gets them, even ahead; the later one is not due within anyone's horizon yet.
    assert scheduler.claim_due(10, 30, ahead_s=3, now=now) == []
    assert scheduler.claim_due(10, 30, ahead_s=3, now=now + timedelta(seconds=8))[0].site_id == later.id


def test_one_batch_writes_each_site_its_own_state_and_schedule(ctx):
    owner = create_user("operator")
    sites = [
        create_site(owner, url=f"http://127.0.0.1:9/{n}", check_interval_s=60 + n, max_retries=1)
        for n in range(4)
    ]
    sites[2].consecutive_failures = 1  # one more failure and it is down
    sites[2].state = "pending"
    db.session.commit()
    claims = {c.site_id: c for c in scheduler.claim_due(10, 30)}
    before = {site.id: site.updated_at for site in sites}
    outcomes = [
        Outcome(claims[sites[0].id], _result(True)),
        Outcome(claims[sites[1].id], _result(False)),  # first failure: pending
        Outcome(claims[sites[2].id], _result(False)),  # past max_retries: down, an incident opens
        # sites[3] is not in the batch: its row must not change
    ]
    assert store(outcomes).stored == 3
    db.session.expire_all()
    rows = {site.id: db.session.get(Site, site.id) for site in sites}
    expected = {sites[0].id: ("up", 0), sites[1].id: ("pending", 1), sites[2].id: ("down", 2)}
    for site_id, (state, failures) in expected.items():
        row, claim = rows[site_id], claims[site_id]
        assert (row.state, row.consecutive_failures) == (state, failures)
        assert row.claimed_until is None
        assert row.next_check_at == claim.due_at + timedelta(seconds=claim.check_interval_s)
        assert row.last_checked_at is not None and row.updated_at > before[site_id]
    untouched = rows[sites[3].id]
    assert untouched.claimed_until == claims[sites[3].id].claimed_until
    assert untouched.state == "unknown" and untouched.last_checked_at is None
    assert untouched.updated_at == before[sites[3].id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 1


def _replica(app, stop_at: float, claimed: list, stored: Counter, errors: list) -> None:
    """One worker's loop in miniature: claim ahead, probe each check at its due time, store the batch."""
    with app.app_context():
        try:
            while time.monotonic() < stop_at:
                claims = scheduler.claim_due(7, 30, ahead_s=0.4)
                claimed.extend((c.site_id, c.due_at) for c in claims)
                outcomes = []
                for claim in claims:
                    wait = (claim.due_at - datetime.now(UTC)).total_seconds()
                    if wait > 0:
                        time.sleep(wait)
                    outcomes.append(Outcome(claim, _result(at=datetime.now(UTC))))
                report = store(outcomes)
                stored["stored"] += report.stored
                stored["skipped"] += report.skipped
                stored["failed"] += report.failed
                db.session.remove()
                time.sleep(0.05)
        except Exception as exc:  # pragma: no cover - reported by the test
            errors.append(exc)
        finally:
            db.session.remove()


@pytest.mark.skipif(settings.BACKEND == "sqlite", reason="replicas share the sites on MariaDB (SKIP LOCKED)")
def test_three_replicas_claiming_ahead_check_every_slot_once_and_none_twice(app, ctx):
    owner = create_user("operator")
    interval = 3  # a replica would have to fall a whole interval behind to skip a slot
    start = datetime.now(UTC) + timedelta(seconds=1)
    sites = [
        create_site(
            owner,
            url=f"http://127.0.0.1:9/{n}",
            check_interval_s=interval,
            next_check_at=start + timedelta(seconds=interval * n / 30),
        )
        for n in range(30)
    ]
    first_due = {site.id: site.next_check_at for site in sites}
    stop_at = time.monotonic() + 1 + 3 * interval
    claimed, stored, errors = [], Counter(), []
    threads = [
        threading.Thread(target=_replica, args=(app, stop_at, claimed, stored, errors)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and not any(thread.is_alive() for thread in threads)
    ended = datetime.now(UTC)

    # None twice: no slot was handed to two replicas, and every result was recorded (none skipped).
    assert max(Counter(claimed).values()) == 1
    assert stored["skipped"] == 0 and stored["failed"] == 0
    db.session.rollback()
    rows = db.session.execute(sa.select(UsabilityCheck.site_id, UsabilityCheck.due_at)).all()
    assert len(rows) == len(set(rows)) == stored["stored"] == len(claimed)
    # Every slot once: each site's checks are its grid points from its first due time on, without a gap,
    # up to a slot due at most an interval (plus the replicas' last round) before the end.
    for site_id, first in first_due.items():
        slots = sorted(due for checked, due in rows if checked == site_id)
        assert slots == [first + timedelta(seconds=interval * k) for k in range(len(slots))]
        assert slots[-1] >= ended - timedelta(seconds=interval + 2)
