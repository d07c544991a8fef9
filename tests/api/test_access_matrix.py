"""Who may do what, on every site-scoped resource: admin, the owner, another operator, viewers and
operators with and without a share. Another user's site and all its data answer 404; a share that is
too weak for a write answers 403; neither changes anything. (Bugs have the same matrix in test_findings.)"""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.extensions import db
from services.models import Site, SiteMember, TamperEvent
from services.tamper_detect import compress, sha256
from services.usability import CheckResult, record_results
from tests.factories import (
    MATRIX_READERS,
    MATRIX_ROLES,
    MATRIX_WRITERS,
    create_site,
    create_user,
    role_matrix,
)

ROLES = MATRIX_ROLES
READERS, WRITERS = MATRIX_READERS, MATRIX_WRITERS
MANAGERS = {"admin", "owner"}  # delete the site, manage its members


def expected(role: str, allowed: set[str], success: int) -> int:
    if role in allowed:
        return success
    return 403 if role in READERS else 404


@pytest.fixture
def world(client, operator):
    """The operator's site with checks, an incident and a tamper event; one caller per case."""
    site = create_site(operator.user, tamper_enabled=True, max_retries=0)
    start = datetime.now(UTC) - timedelta(minutes=5)
    record_results(
        [
            CheckResult(site_id=site.id, due_at=start, checked_at=start, up=True, http_status=200),
            CheckResult(
                site_id=site.id,
                due_at=start + timedelta(minutes=1),
                checked_at=start + timedelta(minutes=1),
                up=False,
                failure_kind="timeout",
                reason="timed out",
            ),
        ]
    )
    page = "<html><body>changed</body></html>"
    event = TamperEvent(site_id=site.id, diff="-a\n+b", content=compress(page), content_sha256=sha256(page))
    db.session.add(event)
    db.session.commit()
    callers = role_matrix(client, operator, site)
    target = create_user("viewer")
    return callers, site.id, event.id, target.id


def snapshot(site_id: int) -> tuple:
    """What the writes below could change."""
    db.session.expire_all()
    site = db.session.get(Site, site_id)
    if site is None:
        return (None,)
    members = db.session.execute(
        sa.select(SiteMember.user_id, SiteMember.permission).where(SiteMember.site_id == site_id)
    ).all()
    events = db.session.execute(
        sa.select(TamperEvent.id, TamperEvent.status, TamperEvent.note).where(TamperEvent.site_id == site_id)
    ).all()
    return (
        site.name,
        site.check_requested_at,
        site.baseline_requested_at,
        sorted(map(tuple, members)),
        sorted(map(tuple, events)),
    )


@pytest.mark.parametrize("role", ROLES)
def test_reads(world, role):
    callers, site_id, event_id, _ = world
    caller = callers[role]
    status = 200 if role in READERS else 404
    for path in (
        f"/sites/{site_id}",
        f"/sites/{site_id}/members",
        f"/usability/checks?site_id={site_id}",
        f"/usability/summary?site_id={site_id}",
        f"/usability/incidents?site_id={site_id}",
        f"/tamper/events?site_id={site_id}",
        f"/tamper/events/{event_id}",
    ):
        response = caller.get(path)
        assert response.status_code == status, path
        if status == 404:
            assert response.get_json()["status"] == 404, path
    # Lists without a site filter hold exactly what the caller may see.
    for path, count in (
        ("/sites", 1),
        ("/usability/checks", 2),
        ("/usability/incidents", 1),
        ("/tamper/events", 1),
    ):
        assert caller.get(path).get_json()["total"] == (count if role in READERS else 0), path


@pytest.mark.parametrize("role", ROLES)
def test_writes(world, role):
    callers, site_id, event_id, target_id = world
    caller = callers[role]
    before = snapshot(site_id)
    calls = [
        (caller.patch, f"/sites/{site_id}", {"json": {"name": f"by {role}"}}, WRITERS, 200),
        (caller.post, f"/sites/{site_id}/check", {}, WRITERS, 202),
        (caller.post, f"/sites/{site_id}/tamper/baseline", {}, WRITERS, 202),
        (caller.patch, f"/tamper/events/{event_id}", {"json": {"note": role}}, WRITERS, 200),
        (
            caller.put,
            f"/sites/{site_id}/members/{target_id}",
            {"json": {"permission": "read"}},
            MANAGERS,
            201,
        ),
        (caller.delete, f"/sites/{site_id}/members/{target_id}", {}, MANAGERS, 204),
    ]
    for method, path, kwargs, allowed, success in calls:
        response = method(path, **kwargs)
        assert response.status_code == expected(role, allowed, success), (method.__name__, path)
    if role not in WRITERS:
        assert snapshot(site_id) == before
    else:
        after = snapshot(site_id)
        assert after[0] == f"by {role}" and after[1] and after[2]
        assert after[4][0][2] == role
    response = caller.delete(f"/sites/{site_id}")
    assert response.status_code == expected(role, MANAGERS, 204)
    assert (snapshot(site_id) == (None,)) == (role in MANAGERS)


@pytest.mark.parametrize("role", ROLES)
def test_creating_sites(world, role):
    callers, *_ = world
    response = callers[role].post("/sites", json={"name": "mine", "url": "https://mine.example.test/"})
    assert response.status_code == (403 if role.startswith("viewer") else 201)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_user_management_is_admin_only_whatever_the_id(world, role):
    callers, _, _, target_id = world
    caller = callers[role]
    for method, path, kwargs in (
        (caller.get, "/users", {}),
        (caller.post, "/users", {"json": {"username": "mallory", "password": "long enough pw"}}),
        (caller.get, f"/users/{target_id}", {}),
        (caller.patch, f"/users/{target_id}", {"json": {"role": "admin"}}),
        (caller.delete, f"/users/{target_id}", {}),
        (caller.get, "/users/999999", {}),
    ):
        assert method(path, **kwargs).status_code == 403, (method.__name__, path)
    assert callers["admin"].get(f"/users/{target_id}").get_json()["role"] == "viewer"


@pytest.mark.parametrize("role", ROLES)
def test_alerts_about_the_site(world, role):
    """A channel may name the site when its owner can read it; a maintenance window needs write access
    (viewers create none); the delivery log filtered by the site follows read access. An invisible site in a
    body is a 422 naming it, like any unknown id there."""
    callers, site_id, _, _ = world
    caller = callers[role]
    channel = caller.post(
        "/channels", json={"name": role, "url": "https://hooks.example.test/x", "site_ids": [site_id]}
    )
    assert channel.status_code == (201 if role in READERS else 422), channel.get_json()
    window = caller.post(
        "/maintenance",
        json={
            "title": role,
            "site_ids": [site_id],
            "starts_at": "2026-01-01T00:00:00Z",
            "ends_at": "2026-01-02T00:00:00Z",
        },
    )
    refused = 403 if role in READERS or role.startswith("viewer") else 422  # viewers create no windows at all
    assert window.status_code == (201 if role in WRITERS else refused), window.get_json()
    assert caller.get(f"/notifications?site_id={site_id}").status_code == (200 if role in READERS else 404)
    if role in READERS:
        channel_id = channel.get_json()["id"]
        for other in set(ROLES) - {role, "admin"}:  # a channel is its owner's (and admins')
            assert callers[other].get(f"/channels/{channel_id}").status_code == 404, other
            assert callers[other].post(f"/channels/{channel_id}/test").status_code == 404, other
