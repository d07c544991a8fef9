"""Locations in process, on the real MariaDB and Redis: claims per (site, location), the quorum vote of live
locations (heartbeats), late results, incidents and notifications on the decision, per-location figures.
Real `sync_main.py` replicas in network namespaces are in test_locations_process.py."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services import locations, scheduler
from services.extensions import db
from services.models import Incident, Notification, Site, SiteLocation, UsabilityCheck
from services.usability import CheckResult, record_results, summary
from sync.probe import ProbeResult
from sync.results import Outcome, store
from sync.worker import Worker
from tests.factories import create_site
from tests.sync.test_alerts import add_channel

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def beat(*names: str) -> None:
    for name in names:
        locations.beat(f"test-{name}", name, {})


def vote(site, location: str, up: bool, minute: int, **extra) -> list[UsabilityCheck]:
    """One result of `location` for the slot `minute` minutes after T0, recorded and committed."""
    due = T0 + timedelta(minutes=minute)
    checks = record_results(
        [
            CheckResult(
                site_id=site.id,
                due_at=due,
                checked_at=due + timedelta(seconds=1),
                up=up,
                http_status=200 if up else 503,
                response_ms=10.0 if up else None,
                failure_kind=None if up else "status",
                reason=None if up else "HTTP 503",
                location=location,
                **extra,
            )
        ]
    )
    db.session.commit()
    return checks


def state(site) -> str:
    db.session.expire_all()
    return db.session.get(Site, site.id).state


def downs_and_ups() -> list[str]:
    db.session.rollback()
    return db.session.scalars(sa.select(Notification.event).order_by(Notification.id)).all()


def test_each_location_claims_its_own_rows_once(app, ctx, operator):
    located = create_site(operator.user, locations=["a", "b"])
    anywhere = create_site(operator.user)
    # A worker of `a` gets a's row and the site of any location; nobody of `a` gets them again.
    first = scheduler.claim_due(10, 30, "a")
    assert sorted((c.site_id, c.per_location) for c in first) == [(located.id, True), (anywhere.id, False)]
    assert scheduler.claim_due(10, 30, "a") == []
    # b's row is b's alone; an agent (any_location false) never gets a site of any location.
    [b_claim] = scheduler.claim_due(10, 30, "b", any_location=False)
    assert (b_claim.site_id, b_claim.location, b_claim.due_at) == (located.id, "b", first[0].due_at)
    assert scheduler.claim_due(10, 30, "c") == []
    # Tamper checks and built-in findings follow one vantage point: the first location.
    primary = {c.location: c.primary for c in (*first, b_claim) if c.per_location}
    assert primary == {"a": True, "b": False}


def test_a_slot_is_recorded_once_per_location(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b"])
    beat("a", "b")
    assert len(vote(site, "a", True, 0)) == 1
    assert vote(site, "a", True, 0) == []  # the same slot again (a retry, a slow replica): skipped
    assert len(vote(site, "b", True, 0)) == 1
    assert vote(site, "c", True, 0) == []  # not one of its locations
    slots = db.session.execute(sa.select(UsabilityCheck.location, UsabilityCheck.due_at)).all()
    assert sorted(slots) == [("a", T0), ("b", T0)]


def test_the_quorum_of_live_locations_decides_and_notifies_once(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b", "c"])  # quorum: a majority, 2
    add_channel(operator.user, "http://127.0.0.1:9/hook")
    beat("a", "b", "c")
    for name in "abc":
        vote(site, name, True, 0)
    assert state(site) == "up"
    vote(site, "a", False, 1)
    vote(site, "c", True, 1)
    assert state(site) == "up" and downs_and_ups() == []  # one location's view: nothing happens
    vote(site, "b", False, 1)
    assert state(site) == "down" and downs_and_ups() == ["site.down"]
    [incident] = db.session.scalars(sa.select(Incident)).all()
    assert incident.location == "b" and incident.ended_at is None
    assert incident.cause.startswith("down from 2 of 3 live locations (quorum 2)")
    assert "a: status: HTTP 503" in incident.cause and "b: status: HTTP 503" in incident.cause
    vote(site, "a", False, 2)  # still down at two: nothing new
    vote(site, "c", True, 2)
    assert downs_and_ups() == ["site.down"]
    vote(site, "b", True, 2)
    assert state(site) == "up" and downs_and_ups() == ["site.down", "site.up"]
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).ended_at is not None


def test_a_location_that_stops_beating_leaves_the_vote(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b", "c"])
    beat("a", "b", "c")
    for name in "abc":
        vote(site, name, name == "c", 0)
    assert state(site) == "down"
    locations.clear("test-b", "b")  # b's only worker stops: b leaves the vote at once
    vote(site, "c", True, 1)
    assert state(site) == "up"  # only a, of a and c, sees it down
    view = summary(operator.user, site.id)
    assert view["locations"]["b"]["alive"] is False and view["locations"]["b"]["state"] == "down"
    assert view["state_held_reason"] is None

    locations.clear("test-c", "c")  # one live location of three, quorum 2: nothing can be decided
    vote(site, "a", False, 1)
    assert state(site) == "up"
    view = summary(operator.user, site.id)
    assert view["state"] == "up" and "only 1 of its 3 locations are alive" in view["state_held_reason"]
    beat("b")
    assert summary(operator.user, site.id)["state_held_reason"] is None  # read at every call


def test_heartbeats_expire_by_themselves(app, ctx, operator, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_HEARTBEAT_TTL_S", 3)
    locations.beat("w1", "a", {})
    assert locations.live_locations(["a", "b"]) == {"a"}
    stale = datetime.now(UTC) - timedelta(seconds=10)
    monkeypatch.setattr(locations, "datetime", _Frozen(stale))
    locations.beat("w2", "b", {})  # b's only heartbeat is 10 s old
    monkeypatch.undo()
    monkeypatch.setitem(app.config, "SYNC_HEARTBEAT_TTL_S", 3)
    assert locations.live_locations(["a", "b"]) == {"a"}
    listed = {item["name"]: item for item in locations.list_locations()}
    assert listed["a"]["alive"] and listed["a"]["workers"] == 1
    assert not listed["b"]["alive"] and listed["b"]["workers"] == 0 and listed["b"]["last_seen_at"] <= stale


class _Frozen:
    """`datetime` with `now()` fixed (the heartbeat's clock), for a beat in the past."""

    def __init__(self, moment):
        self.moment = moment

    def now(self, tz=None):
        return self.moment

    def __getattr__(self, name):
        return getattr(datetime, name)


def test_late_results_are_kept_but_never_vote(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b", "c"])
    beat("a", "b", "c")
    for name in "abc":
        vote(site, name, True, 5)
    [late] = vote(site, "a", False, 6, late=True)  # an agent's, sent after the API came back
    [older] = vote(site, "b", False, 4)  # an older slot arriving after a newer one
    assert late.late and older.late
    vote(site, "c", False, 6)
    assert state(site) == "up"  # a and b voted up (their latest on-time results); c alone sees it down
    views = {row.location: row.state for row in db.session.scalars(sa.select(SiteLocation))}
    assert views == {"a": "up", "b": "up", "c": "down"}
    figures = summary(operator.user, site.id)["locations"]
    assert figures["a"]["uptime"]["24h"] == 50.0  # ... yet its late failure counts in a's own uptime


def test_each_location_applies_max_retries_to_its_own_failures(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b"], max_retries=1, quorum=2)
    beat("a", "b")
    for minute in (0, 1):
        vote(site, "a", False, minute)
    vote(site, "b", False, 0)
    assert state(site) == "pending"  # a is down, b only pending (one failure of the two allowed)
    vote(site, "b", False, 1)
    assert state(site) == "down"


def test_summary_per_location_and_the_site_uptime_follows_the_decision(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b", "c"], quorum=2)
    beat("a", "b", "c")
    for minute in range(4):
        vote(site, "a", minute % 2 == 0, minute)  # a fails every other check
        vote(site, "b", True, minute)
        vote(site, "c", True, minute)
    view = operator.get(f"/usability/summary?site_id={site.id}").get_json()
    assert view["state"] == "up" and view["quorum"] == 2 and view["state_held_reason"] is None
    assert set(view["locations"]) == {"a", "b", "c"}
    a = view["locations"]["a"]
    assert a["uptime"]["24h"] == 50.0 and a["alive"] is True and a["latency_ms"]["avg"] == 10.0
    assert view["locations"]["b"]["uptime"]["24h"] == 100.0
    assert view["uptime"]["24h"] == 100.0  # one location's failures never lower the site's own uptime
    a_checks = operator.get(f"/usability/checks?site_id={site.id}&location=a").get_json()
    assert a_checks["total"] == 4 and {c["location"] for c in a_checks["items"]} == {"a"}
    assert summary(operator.user, create_site(operator.user).id)["locations"] == {}


def test_pausing_and_moving_a_site_keeps_its_rows_in_step(app, ctx, operator):
    created = operator.post("/sites", json={"name": "s", "url": "http://127.0.0.1:9/", "locations": ["a"]})
    site_id = created.get_json()["id"]
    assert created.get_json()["next_check_at"] is None  # scheduled per location
    assert [c.location for c in scheduler.claim_due(5, 30, "a")] == ["a"]
    db.session.execute(sa.update(SiteLocation).values(claimed_until=None))
    db.session.commit()
    assert operator.patch(f"/sites/{site_id}", json={"paused": True}).status_code == 200
    assert scheduler.claim_due(5, 30, "a") == []
    assert operator.patch(f"/sites/{site_id}", json={"paused": False}).status_code == 200
    assert [c.site_id for c in scheduler.claim_due(5, 30, "a")] == [site_id]

    # Another set: b joins, a leaves (its row, schedule and vote go); both due now on one grid.
    assert operator.patch(f"/sites/{site_id}", json={"locations": ["b", "c"]}).status_code == 200
    rows = db.session.scalars(sa.select(SiteLocation).order_by(SiteLocation.location)).all()
    assert [r.location for r in rows] == ["b", "c"] and rows[0].next_check_at == rows[1].next_check_at
    # Back to any location: its own schedule again, any worker takes it.
    assert operator.patch(f"/sites/{site_id}", json={"locations": []}).status_code == 200
    assert db.session.scalars(sa.select(SiteLocation)).all() == []
    [claim] = scheduler.claim_due(5, 30, "z")
    assert (claim.site_id, claim.per_location) == (site_id, False)


def test_a_check_request_makes_every_location_due(app, ctx, operator):
    site = create_site(operator.user, locations=["a", "b"])
    claims = scheduler.claim_due(5, 30, "a") + scheduler.claim_due(5, 30, "b")
    beat("a", "b")
    store([Outcome(c, ProbeResult(datetime.now(UTC), True, http_status=200)) for c in claims])
    assert scheduler.claim_due(5, 30, "a") == []  # next slot in a minute
    assert operator.post(f"/sites/{site.id}/check").status_code == 202
    again = scheduler.claim_due(5, 30, "a") + scheduler.claim_due(5, 30, "b")
    assert sorted(c.location for c in again) == ["a", "b"] and again[0].due_at == again[1].due_at


def test_a_worker_labels_its_checks_and_heartbeat(app, ctx, operator, web, monkeypatch):
    monkeypatch.setitem(app.config, "CLOUDEYE_LOCATION", "eu")
    worker = Worker(app)
    try:
        site = create_site(operator.user, url=web.set("/"), locations=["eu"])
        worker.beat()
        assert worker.run_once().stored == 1
        [check] = db.session.scalars(sa.select(UsabilityCheck)).all()
        assert (check.site_id, check.location, check.late) == (site.id, "eu", False)
        assert state(site) == "up"
        listed = operator.get("/locations").get_json()
        assert [(i["name"], i["workers"], i["alive"]) for i in listed["items"]] == [("eu", 1, True)]
    finally:
        worker.close()
