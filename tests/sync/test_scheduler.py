"""Claims: a due check is handed out once, a lost claim comes back for the same slot, results schedule
the next slot on the site's grid, and API requests make a site due at once."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services import scheduler
from services.extensions import db
from services.models import Site, UsabilityCheck
from sync.probe import ProbeResult
from sync.results import Outcome, store
from tests.factories import create_site, create_user


def _site(**fields):
    owner = create_user("operator")
    fields.setdefault("url", "http://127.0.0.1:9/")
    return create_site(owner, **fields)


def _result(up=True):
    return ProbeResult(
        started_at=datetime.now(UTC),
        up=up,
        http_status=200 if up else None,
        response_ms=5.0,
        failure_kind=None if up else "refused",
        reason=None if up else "connection refused",
    )


def test_a_due_site_is_claimed_once_until_its_claim_expires(ctx):
    site = _site()
    due = db.session.get(Site, site.id).next_check_at
    first = scheduler.claim_due(10, lease_margin_s=30)
    assert [c.site_id for c in first] == [site.id]
    assert first[0].due_at == due
    assert scheduler.claim_due(10, lease_margin_s=30) == []  # claimed: nobody else gets it

    # The claiming worker dies; once the lease has passed, the same slot is handed out again.
    later = first[0].claimed_until + timedelta(seconds=1)
    again = scheduler.claim_due(10, lease_margin_s=30, now=later)
    assert [c.due_at for c in again] == [due]
    assert again[0].claimed_until != first[0].claimed_until


def test_paused_and_not_yet_due_sites_are_not_claimed(ctx):
    _site(paused=True)
    future = _site()
    future.next_check_at = datetime.now(UTC) + timedelta(minutes=5)
    db.session.commit()
    assert scheduler.claim_due(10, lease_margin_s=30) == []


def test_claims_oldest_due_first_and_respects_the_limit(ctx):
    now = datetime.now(UTC)
    sites = [_site() for _ in range(3)]
    for age, site in zip((10, 30, 20), sites, strict=True):
        site.next_check_at = now - timedelta(seconds=age)
    db.session.commit()
    claims = scheduler.claim_due(2, lease_margin_s=30)
    assert [c.site_id for c in claims] == [sites[1].id, sites[2].id]


def test_storing_a_result_schedules_the_next_slot_and_releases_the_claim(ctx):
    site = _site(check_interval_s=60)
    [claim] = scheduler.claim_due(1, lease_margin_s=30)
    report = store([Outcome(claim, _result())])
    assert report.stored == 1
    db.session.expire_all()
    site = db.session.get(Site, site.id)
    assert site.claimed_until is None
    assert site.next_check_at == claim.due_at + timedelta(seconds=60)
    assert site.state == "up"


def test_a_slot_is_recorded_once_even_if_two_workers_ran_it(ctx):
    _site()
    [slow] = scheduler.claim_due(1, lease_margin_s=30)
    # The first worker stalls past its lease; another worker claims and finishes the same slot first.
    [fast] = scheduler.claim_due(1, lease_margin_s=30, now=slow.claimed_until + timedelta(seconds=1))
    assert fast.due_at == slow.due_at
    assert store([Outcome(fast, _result())]).stored == 1
    late = store([Outcome(slow, _result(up=False))])
    assert late.stored == 0 and late.skipped == 1
    checks = db.session.scalars(sa.select(UsabilityCheck)).all()
    assert [(c.due_at, c.status) for c in checks] == [(fast.due_at, "up")]


def test_a_check_requested_during_a_probe_runs_right_after_it(ctx, operator):
    site = create_site(operator.user, url="http://127.0.0.1:9/")
    [claim] = scheduler.claim_due(1, lease_margin_s=30)
    assert operator.post(f"/sites/{site.id}/check").status_code == 202
    store([Outcome(claim, _result())])
    db.session.expire_all()
    site = db.session.get(Site, site.id)
    assert site.next_check_at > claim.due_at and site.next_check_at <= datetime.now(UTC)
    assert site.check_requested_at is not None  # the request came after the claim: still pending
    [again] = scheduler.claim_due(1, lease_margin_s=30)
    assert again.due_at == site.next_check_at
    store([Outcome(again, _result())])
    db.session.expire_all()
    assert db.session.get(Site, site.id).check_requested_at is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityCheck)) == 2


def test_release_gives_unfinished_claims_back(ctx):
    _site()
    claims = scheduler.claim_due(1, lease_margin_s=30)
    assert scheduler.release(claims) == 1
    assert [c.due_at for c in scheduler.claim_due(1, lease_margin_s=30)] == [claims[0].due_at]


def test_next_slot_keeps_the_grid_and_skips_what_was_missed():
    due = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    # on time or a little late: the next point of the grid
    assert scheduler.next_slot(due, 60, due + timedelta(seconds=3)) == due + timedelta(seconds=60)
    # far behind: the first grid point after now, not a burst of catch-up checks
    assert scheduler.next_slot(due, 60, due + timedelta(seconds=150)) == due + timedelta(seconds=180)
    assert scheduler.next_slot(due, 60, due + timedelta(seconds=120)) == due + timedelta(seconds=180)


def test_the_probe_gets_the_url_with_its_password_which_the_site_keeps_apart(ctx):
    site = _site(url="http://watch:s%40cret@127.0.0.1:9/private")
    stored = db.session.get(Site, site.id)
    assert (stored.url, stored.url_password) == ("http://watch@127.0.0.1:9/private", "s%40cret")
    [claim] = scheduler.claim_due(10, lease_margin_s=30)
    assert claim.url == "http://watch:s%40cret@127.0.0.1:9/private"
