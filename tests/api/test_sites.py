import logging
from datetime import UTC, datetime, timedelta

import pytest

from services.extensions import db
from services.models import Site
from tests.api.helpers import statements
from tests.factories import MATRIX_READERS, MATRIX_WRITERS, create_site, create_user, role_matrix, share

VALID = {"name": "Shop", "url": "https://shop.example.test/"}


def answer(response, status: int = 200) -> dict:
    """The JSON body of a response that must have `status`."""
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def stored(site_id: int) -> Site:
    db.session.expire_all()
    return db.session.get(Site, site_id)


def test_create_site_with_defaults(operator):
    response = operator.post("/sites", json=VALID)
    assert response.status_code == 201
    site = response.get_json()
    assert site["owner_id"] == operator.user.id
    assert site["check_interval_s"] == 60 and site["timeout_s"] == 10
    assert site["accepted_status"] == "200-399" and site["tamper_threshold"] == 0.05
    assert site["state"] == "unknown" and site["paused"] is False
    assert operator.get(f"/sites/{site['id']}").get_json()["name"] == "Shop"


def test_private_and_loopback_targets_are_valid_by_default(operator):
    for url in ("http://127.0.0.1:8080/health", "http://10.1.2.3/", "http://intranet/"):
        assert operator.post("/sites", json={"name": "x", "url": url}).status_code == 201, url


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"url": "https://a.example.test/"},
        {"name": "x", "url": "ftp://a.example.test/"},
        {"name": "x", "url": "javascript:alert(1)"},
        {"name": "x", "url": "https://a.example.test/", "check_interval_s": 5},
        {"name": "x", "url": "https://a.example.test/", "timeout_s": 0},
        {"name": "x", "url": "https://a.example.test/", "timeout_s": 100, "check_interval_s": 30},
        {"name": "x", "url": "https://a.example.test/", "accepted_status": "abc"},
        {"name": "x", "url": "https://a.example.test/", "accepted_status": "399-200"},
        {"name": "x", "url": "https://a.example.test/", "tamper_threshold": 1.5},
        {"name": "x", "url": "https://a.example.test/", "tamper_ignore": ["("]},
        {"name": "x", "url": "https://a.example.test/", "forbidden_keywords": "hacked"},
        {"name": "", "url": "https://a.example.test/"},
        {"name": "x" * 201, "url": "https://a.example.test/"},
        {"name": "x\ud800", "url": "https://a.example.test/"},
        {"name": "x", "url": "https://a.example.test/", "owner_id": 1},
    ],
)
def test_invalid_sites_are_422_with_field_errors(operator, body):
    response = operator.post("/sites", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("a{3000000}", "invalid repetition size"), ("(?<=x)y", "invalid perl operator")],
)
def test_ignore_patterns_the_engine_refuses_are_422_with_its_reason(operator, pattern, reason):
    response = operator.post("/sites", json={**VALID, "tamper_ignore": [r"\d+", pattern]})
    body = answer(response, 422)
    assert reason in " ".join(body["errors"]["tamper_ignore"])
    assert operator.get("/sites").get_json()["total"] == 0


def test_malformed_json_is_400(operator):
    response = operator.post("/sites", data='{"name": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["status"] == 400


def test_patch_changes_only_given_fields_and_validates(operator):
    site = operator.post("/sites", json=VALID).get_json()
    body = answer(operator.patch(f"/sites/{site['id']}", json={"paused": True, "keyword": "Welcome"}))
    assert body["paused"] is True and body["keyword"] == "Welcome" and body["name"] == "Shop"
    assert stored(site["id"]).paused is True and stored(site["id"]).keyword == "Welcome"
    assert operator.patch(f"/sites/{site['id']}", json={"url": "gopher://x"}).status_code == 422
    # the rule between two fields holds when only one of them is sent
    assert operator.patch(f"/sites/{site['id']}", json={"timeout_s": 90}).status_code == 422
    assert operator.get(f"/sites/{site['id']}").get_json()["timeout_s"] == 10


def test_a_new_url_is_checked_at_once_and_gives_the_tamper_baseline(operator):
    site = create_site(operator.user, url="https://old.example.test/")
    later = datetime.now(UTC) + timedelta(hours=1)
    site.next_check_at = later
    db.session.commit()

    assert answer(operator.patch(f"/sites/{site.id}", json={"name": "renamed"}))["name"] == "renamed"
    assert stored(site.id).next_check_at > datetime.now(UTC)  # a rename changes nothing

    body = answer(operator.patch(f"/sites/{site.id}", json={"url": "https://new.example.test/"}))
    assert body["url"] == "https://new.example.test/"
    changed = stored(site.id)
    assert changed.url == "https://new.example.test/" and changed.next_check_at <= datetime.now(UTC)
    assert changed.baseline_requested_at is not None


def test_switching_tamper_on_takes_a_new_baseline(operator):
    site = create_site(operator.user, tamper_enabled=False)
    assert (
        answer(operator.patch(f"/sites/{site.id}", json={"tamper_enabled": True}))["tamper_enabled"] is True
    )
    assert stored(site.id).tamper_enabled and stored(site.id).baseline_requested_at is not None


def test_a_paused_site_refuses_check_and_baseline_requests_until_resumed(operator):
    site = create_site(operator.user, tamper_enabled=True)
    assert answer(operator.patch(f"/sites/{site.id}", json={"paused": True}))["paused"] is True
    for path in (f"/sites/{site.id}/check", f"/sites/{site.id}/tamper/baseline"):
        response = operator.post(path)
        assert response.status_code == 409 and "paused" in response.get_json()["message"], path
    db.session.expire_all()
    assert db.session.get(Site, site.id).check_requested_at is None
    assert answer(operator.patch(f"/sites/{site.id}", json={"paused": False}))["paused"] is False
    assert answer(operator.post(f"/sites/{site.id}/check"), 202)["site_id"] == site.id
    assert stored(site.id).check_requested_at is not None


def test_list_is_paginated_and_filtered(operator):
    for number in range(25):
        create_site(operator.user, name=f"site-{number:02d}")
    first = operator.get("/sites?per_page=10").get_json()
    assert first["total"] == 25 and len(first["items"]) == 10 and first["page"] == 1
    third = operator.get("/sites?per_page=10&page=3").get_json()
    assert len(third["items"]) == 5
    assert operator.get("/sites?q=site-1").get_json()["total"] == 10
    assert operator.get("/sites?per_page=101").status_code == 422
    assert operator.get("/sites?page=0").status_code == 422


def test_delete_site(operator):
    site = create_site(operator.user)
    assert operator.delete(f"/sites/{site.id}").status_code == 204
    assert operator.get(f"/sites/{site.id}").status_code == 404


def test_unknown_and_absurd_ids_are_404(operator):
    assert operator.get("/sites/999999").status_code == 404
    assert operator.get("/sites/99999999999999999999999").status_code == 404
    assert operator.get("/sites/-1").status_code == 404
    assert operator.get("/sites/abc").status_code == 404


def test_check_and_baseline_requests_are_recorded(operator):
    site = create_site(operator.user, tamper_enabled=True)
    response = operator.post(f"/sites/{site.id}/check")
    assert response.status_code == 202 and response.get_json()["site_id"] == site.id
    assert stored(site.id).check_requested_at is not None
    assert answer(operator.post(f"/sites/{site.id}/tamper/baseline"), 202)["message"] == "baseline queued"
    assert stored(site.id).baseline_requested_at is not None
    plain = create_site(operator.user)
    assert operator.post(f"/sites/{plain.id}/tamper/baseline").status_code == 409


class TestAccessMatrix:
    """admin, owner (operator), another operator, a viewer without and with a share."""

    def test_reads(self, admin, operator, other_operator, viewer):
        site = create_site(operator.user)
        assert answer(admin.get(f"/sites/{site.id}"))["id"] == site.id
        assert answer(operator.get(f"/sites/{site.id}"))["id"] == site.id
        assert other_operator.get(f"/sites/{site.id}").status_code == 404
        assert viewer.get(f"/sites/{site.id}").status_code == 404
        assert other_operator.get("/sites").get_json()["total"] == 0
        assert admin.get("/sites").get_json()["total"] == 1
        share(site, viewer.user, "read")
        assert answer(viewer.get(f"/sites/{site.id}"))["id"] == site.id
        assert viewer.get("/sites").get_json()["total"] == 1

    def test_writes(self, admin, operator, other_operator, viewer):
        site = create_site(operator.user)
        change = {"name": "renamed"}
        assert other_operator.patch(f"/sites/{site.id}", json=change).status_code == 404
        assert other_operator.delete(f"/sites/{site.id}").status_code == 404
        assert other_operator.post(f"/sites/{site.id}/check").status_code == 404
        share(site, viewer.user, "write")  # a viewer never writes, whatever the share says
        assert viewer.patch(f"/sites/{site.id}", json=change).status_code == 403
        assert viewer.post(f"/sites/{site.id}/check").status_code == 403
        assert viewer.post("/sites", json=VALID).status_code == 403
        share(site, other_operator.user, "read")
        assert other_operator.patch(f"/sites/{site.id}", json=change).status_code == 403
        assert stored(site.id).name != "renamed"  # none of the refused writes changed it
        assert answer(admin.patch(f"/sites/{site.id}", json=change))["name"] == "renamed"
        assert answer(operator.patch(f"/sites/{site.id}", json={"name": "again"}))["name"] == "again"
        assert stored(site.id).name == "again"

    def test_write_share_lets_an_operator_change_but_not_delete(self, operator, other_operator):
        site = create_site(operator.user)
        share(site, other_operator.user, "write")
        assert answer(other_operator.patch(f"/sites/{site.id}", json={"name": "n"}))["name"] == "n"
        assert answer(other_operator.post(f"/sites/{site.id}/check"), 202)["site_id"] == site.id
        assert other_operator.delete(f"/sites/{site.id}").status_code == 403
        assert stored(site.id).name == "n"

    def test_an_owner_demoted_to_viewer_no_longer_shares_the_site(self, admin, operator, viewer):
        site = create_site(operator.user)
        assert answer(admin.patch(f"/users/{operator.user.id}", json={"role": "viewer"}))["role"] == "viewer"
        path = f"/sites/{site.id}/members/{viewer.user.id}"
        assert answer(operator.get(f"/sites/{site.id}"))["id"] == site.id  # still sees what it owns
        assert operator.put(path, json={"permission": "write"}).status_code == 403
        share(site, viewer.user)
        assert operator.delete(path).status_code == 403
        assert operator.patch(f"/sites/{site.id}", json={"name": "n"}).status_code == 403

    def test_members(self, admin, operator, other_operator, viewer):
        site = create_site(operator.user)
        path = f"/sites/{site.id}/members/{viewer.user.id}"
        assert answer(operator.put(path, json={"permission": "read"}), 201)["permission"] == "read"
        assert answer(operator.put(path, json={"permission": "write"}))["permission"] == "write"
        assert operator.put(path, json={"permission": "owner"}).status_code == 422
        members = operator.get(f"/sites/{site.id}/members").get_json()
        assert members["total"] == 1 and members["items"][0]["user_id"] == viewer.user.id
        assert members["items"][0]["username"] is None  # users are admins' to list
        assert answer(admin.get(f"/sites/{site.id}/members"))["items"][0]["username"] == viewer.user.username
        assert answer(viewer.get(f"/sites/{site.id}/members"))["items"][0]["username"] == viewer.user.username
        assert answer(viewer.get(f"/sites/{site.id}/members"))["items"][0]["permission"] == "write"
        assert (
            viewer.put(
                f"/sites/{site.id}/members/{other_operator.user.id}", json={"permission": "read"}
            ).status_code
            == 403
        )
        assert other_operator.put(path, json={"permission": "read"}).status_code == 404
        assert (
            operator.put(
                f"/sites/{site.id}/members/{operator.user.id}", json={"permission": "read"}
            ).status_code
            == 422
        )
        assert (
            operator.put(f"/sites/{site.id}/members/999999", json={"permission": "read"}).status_code == 404
        )
        assert admin.delete(path).status_code == 204
        assert admin.delete(path).status_code == 404
        assert viewer.get(f"/sites/{site.id}").status_code == 404


def test_the_member_list_reads_the_members_users_with_the_page(admin, operator):
    """No query per member for their usernames: the same number of statements for 1 or 8 members."""
    site = create_site(operator.user)

    def member_list_statements():
        db.session.expire_all()  # the request shares this session: nothing may come from its memory
        with statements() as sent:
            body = admin.get(f"/sites/{site.id}/members").get_json()
        assert all(item["username"] for item in body["items"])
        return len(sent)

    share(site, create_user("viewer"))
    admin.get("/users/me")  # the token's last use is written once, not in the measured requests
    one = member_list_statements()
    for _ in range(7):
        share(site, create_user("viewer"))
    assert member_list_statements() == one


SECRET_URL = "https://watch:s3cr3t-pw@shop.example.test/admin"
MASKED_URL = "https://watch:***@shop.example.test/admin"


def test_a_password_in_the_url_is_shown_only_to_those_who_may_change_the_site(client, operator, caplog):
    with caplog.at_level(logging.DEBUG):
        created = answer(operator.post("/sites", json={"name": "Shop", "url": SECRET_URL}), 201)
        assert created["url"] == SECRET_URL
        site = db.session.get(Site, created["id"])
        callers = role_matrix(client, operator, site)
        for role in sorted(MATRIX_READERS):
            expected = SECRET_URL if role in MATRIX_WRITERS else MASKED_URL
            caller = callers[role]
            assert answer(caller.get(f"/sites/{site.id}"))["url"] == expected, role
            assert [item["url"] for item in answer(caller.get("/sites"))["items"]] == [expected], role
            # the password is never something to search for; the rest of the URL is
            assert answer(caller.get("/sites?q=s3cr3t"))["total"] == 0, role
            assert answer(caller.get("/sites?q=watch"))["total"] == 1, role
        renamed = answer(callers["operator_write"].patch(f"/sites/{site.id}", json={"name": "Shop 2"}))
        assert renamed["url"] == SECRET_URL  # a change that leaves the URL keeps its password
    assert "s3cr3t" not in caplog.text


def test_the_masked_password_sent_back_keeps_the_stored_one(operator):
    """A URL as readers and the console see it (`***` for the password) changes the rest, not the password."""
    site = answer(operator.post("/sites", json={"name": "Shop", "url": SECRET_URL}), 201)
    moved = MASKED_URL.replace("/admin", "/login")
    changed = answer(operator.patch(f"/sites/{site['id']}", json={"url": moved}))
    assert changed["url"] == SECRET_URL.replace("/admin", "/login")
    assert stored(site["id"]).url_password == "s3cr3t-pw"


def test_a_new_url_without_a_password_drops_the_old_one(operator):
    site = answer(operator.post("/sites", json={"name": "Shop", "url": SECRET_URL}), 201)
    changed = answer(operator.patch(f"/sites/{site['id']}", json={"url": "https://shop.example.test/"}))
    assert changed["url"] == "https://shop.example.test/" and stored(site["id"]).url_password is None


def test_sharing_by_id_does_not_tell_an_operator_who_the_user_is(operator):
    """Trying ids one after the other must not list the users' names (404 vs 201 says only that an id
    exists; the answer names nobody)."""
    site = create_site(operator.user)
    others = [create_user("viewer", username=f"secret-name-{n}") for n in range(3)]
    for other in others:
        response = operator.put(f"/sites/{site.id}/members/{other.id}", json={"permission": "read"})
        body = answer(response, 201)
        assert body["user_id"] == other.id and body["username"] is None
        assert "secret-name" not in response.get_data(as_text=True)
    listed = operator.get(f"/sites/{site.id}/members").get_data(as_text=True)
    assert "secret-name" not in listed
