"""The probe API a remote agent uses, and the probe role: it claims only its location's checks, its results
are recorded once however often it sends them, late ones never vote, calls are rate limited, and a probe
token is refused by every other operation of the document (as every other role is by these)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services import locations
from services.config import API_PREFIX
from services.extensions import db
from services.models import Site, SiteLocation, UsabilityCheck
from tests.factories import Caller, create_site, create_user


@pytest.fixture
def probe(client):
    return Caller(client, create_user("probe", location="far"))


def _claim(probe, limit=10, worker_id="host:1"):
    response = probe.post("/probe/claims", json={"worker_id": worker_id, "limit": limit})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _result(check, up=True, **extra):
    now = datetime.now(UTC).isoformat()
    return {
        "site_id": check["site_id"],
        "due_at": check["due_at"],
        "claimed_until": check["claimed_until"],
        "checked_at": now,
        "up": up,
        "http_status": 200 if up else 503,
        "response_ms": 12.5,
        "failure_kind": None if up else "status",
        "reason": None if up else "HTTP 503",
        **extra,
    }


def _send(probe, results, worker_id="host:1"):
    response = probe.post("/probe/results", json={"worker_id": worker_id, "results": results})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_agent_claims_only_its_locations_checks(probe, operator):
    mine = create_site(operator.user, locations=["far", "near"], url="https://mine.example.test/x")
    create_site(operator.user, locations=["near"])
    create_site(operator.user)  # any location: the sync replicas', never an agent's
    answer = _claim(probe)
    assert answer["location"] == "far" and answer["heartbeat_ttl_s"] > 0
    [check] = answer["checks"]
    assert check["site_id"] == mine.id and check["url"] == "https://mine.example.test/x"
    assert _claim(probe)["checks"] == []  # claimed: not handed out twice
    # The claim call is the agent's heartbeat: its location is alive.
    assert locations.live_locations(["far", "near"]) == {"far"}
    assert probe.post("/probe/claims", json={"worker_id": "host:1", "limit": 0}).status_code == 200


def test_results_are_recorded_once_and_decide(probe, operator):
    site = create_site(operator.user, locations=["far"])
    [check] = _claim(probe)["checks"]
    first = _send(probe, [_result(check, up=False)])
    assert first == {"recorded": 1, "late": 0, "duplicates": 0, "skipped": 0}
    assert _send(probe, [_result(check, up=False)]) == {
        "recorded": 0,
        "late": 0,
        "duplicates": 1,
        "skipped": 0,
    }
    db.session.expire_all()
    assert db.session.get(Site, site.id).state == "down"  # quorum 1 of 1
    [row] = db.session.scalars(sa.select(UsabilityCheck)).all()
    assert (row.location, row.late, row.status) == ("far", False, "down")
    # The claim is finished: the next slot is a minute on, claimed by nobody.
    location = db.session.get(SiteLocation, (site.id, "far"))
    assert location.claimed_until is None and location.next_check_at > datetime.now(UTC)


def test_late_results_are_kept_but_do_not_vote(probe, operator):
    site = create_site(operator.user, locations=["far"])
    [check] = _claim(probe)["checks"]
    _send(probe, [_result(check)])
    # Made while the API was out of reach: no claim, a slot the agent scheduled itself, marked late.
    due = datetime.fromisoformat(check["due_at"]) + timedelta(minutes=1)
    offline = {**_result(check, up=False), "due_at": due.isoformat(), "claimed_until": None, "late": True}
    expired = {
        **_result(check, up=False),
        "due_at": (due + timedelta(minutes=1)).isoformat(),
        "claimed_until": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
    }
    assert _send(probe, [offline, expired]) == {"recorded": 2, "late": 2, "duplicates": 0, "skipped": 0}
    db.session.expire_all()
    assert db.session.get(Site, site.id).state == "up"
    lates = db.session.scalars(sa.select(UsabilityCheck.late).order_by(UsabilityCheck.due_at)).all()
    assert lates == [False, True, True]


def test_results_for_other_sites_are_skipped(probe, operator):
    near = create_site(operator.user, locations=["near"])
    anywhere = create_site(operator.user)
    now = datetime.now(UTC).isoformat()
    results = [
        {"site_id": site_id, "due_at": now, "checked_at": now, "up": True}
        for site_id in (near.id, anywhere.id, 999_999)
    ]
    assert _send(probe, results) == {"recorded": 0, "late": 0, "duplicates": 0, "skipped": 3}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityCheck)) == 0


def test_release_gives_claims_back_and_stopping_leaves_the_location(probe, operator):
    create_site(operator.user, locations=["far"])
    [check] = _claim(probe)["checks"]
    lease = {key: check[key] for key in ("site_id", "due_at", "claimed_until")}
    response = probe.post("/probe/release", json={"worker_id": "host:1", "claims": [lease], "stopping": True})
    assert response.status_code == 200 and response.get_json() == {"released": 1}
    assert locations.live_locations(["far"]) == set()
    assert [c["due_at"] for c in _claim(probe)["checks"]] == [check["due_at"]]  # the same slot, at once


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"worker_id": "host:1"},
        {"worker_id": "host 1", "limit": 1},
        {"worker_id": "x" * 101, "limit": 1},
        {"worker_id": "host:1", "limit": -1},
        {"worker_id": "host:1", "limit": 501},
        {"worker_id": "host:1", "limit": 1, "extra": True},
    ],
)
def test_bad_claims_are_422(probe, body):
    assert probe.post("/probe/claims", json=body).status_code == 422


@pytest.mark.parametrize(
    "result",
    [
        {"due_at": "now", "checked_at": "2026-01-01T00:00:00Z", "up": True},
        {"due_at": "2026-01-01T00:00:00Z", "up": True},
        {"due_at": "2026-01-01T00:00:00Z", "checked_at": "2026-01-01T00:00:00Z", "up": "maybe"},
        {
            "due_at": "2026-01-01T00:00:00Z",
            "checked_at": "2026-01-01T00:00:00Z",
            "up": False,
            "failure_kind": "x",
        },
        {
            "due_at": "2026-01-01T00:00:00Z",
            "checked_at": "2026-01-01T00:00:00Z",
            "up": True,
            "http_status": 99,
        },
        {
            "due_at": "2026-01-01T00:00:00Z",
            "checked_at": "2026-01-01T00:00:00Z",
            "up": True,
            "response_ms": -1,
        },
        {
            "due_at": "2026-01-01T00:00:00Z",
            "checked_at": "2026-01-01T00:00:00Z",
            "up": True,
            "reason": "x" * 501,
        },
    ],
)
def test_bad_results_are_422_and_nothing_is_recorded(probe, operator, result):
    site = create_site(operator.user, locations=["far"])
    response = probe.post(
        "/probe/results", json={"worker_id": "h:1", "results": [{"site_id": site.id, **result}]}
    )
    assert response.status_code == 422, response.get_json()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityCheck)) == 0


def test_too_many_results_in_one_call_is_422(probe):
    now = datetime.now(UTC).isoformat()
    results = [{"site_id": 1, "due_at": now, "checked_at": now, "up": True}] * 501
    assert probe.post("/probe/results", json={"worker_id": "h:1", "results": results}).status_code == 422


def test_calls_are_rate_limited_per_probe_account(app, probe, monkeypatch):
    monkeypatch.setitem(app.config, "PROBE_RATE_LIMIT", 3)
    for _ in range(3):
        _claim(probe, limit=0)
    response = probe.post("/probe/claims", json={"worker_id": "host:1", "limit": 0})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["status"] == 429
    other = Caller(probe.client, create_user("probe", location="far"))
    assert other.post("/probe/claims", json={"worker_id": "h:2", "limit": 0}).status_code == 200


def _operations(app):
    spec = app.test_client().get(f"{API_PREFIX}/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete") and operation.get("security") != []:
                yield method, re.sub(r"\{[^}]*\}", "1", path)


def test_a_probe_token_is_refused_everywhere_else(app, probe, operator):
    create_site(operator.user)  # so that /sites/1 and the like may exist
    checked = 0
    for method, path in _operations(app):
        if "/probe/" in path:
            continue
        response = probe.client.open(path, method=method.upper(), headers=probe.headers, json={})
        assert response.status_code == 403, f"{method.upper()} {path}: {response.status_code}"
        assert response.get_json()["status"] == 403
        checked += 1
    assert checked >= 40
    # Its own login token is refused too, and the console will not have it.
    login = probe.client.post(
        f"{API_PREFIX}/users/login",
        json={"username": probe.user.username, "password": "correct horse battery"},
    )
    assert login.status_code == 200
    token = login.get_json()["token"]
    assert (
        probe.client.get(f"{API_PREFIX}/users/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 403
    )


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_only_probe_accounts_may_probe(app, client, role):
    caller = Caller(client, create_user(role))
    for method, path in _operations(app):
        if "/probe/" in path:
            response = caller.client.open(path, method=method.upper(), headers=caller.headers, json={})
            assert response.status_code == 403, f"{role}: {method.upper()} {path}"


def test_an_admin_creates_a_probe_accounts_token_and_nobody_else_does(admin, operator, probe):
    created = admin.post(f"/users/{probe.user.id}/tokens", json={"name": "agent", "expires_in_days": 365})
    assert created.status_code == 201
    secret = created.get_json()["token"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert (
        probe.client.post(
            f"{API_PREFIX}/probe/claims", json={"worker_id": "a:1", "limit": 0}, headers=headers
        ).status_code
        == 200
    )
    assert admin.post(f"/users/{operator.user.id}/tokens", json={"name": "x"}).status_code == 422
    assert admin.post("/users/999999/tokens", json={"name": "x"}).status_code == 404
    assert operator.post(f"/users/{probe.user.id}/tokens", json={"name": "x"}).status_code == 403
    assert probe.post("/users/me/tokens", json={"name": "mine"}).status_code == 403
