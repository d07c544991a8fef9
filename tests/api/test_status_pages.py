"""Status pages: managing them through the API, and the public JSON twin of /status/<slug>."""

from datetime import UTC, datetime, timedelta

import pytest

from services.extensions import db
from services.models import Incident, UsabilityRollup
from services.usability import day_start
from tests.api.helpers import statements
from tests.factories import create_site, create_user, share


def page_body(*sites, **fields):
    return {"slug": "shop", "title": "Shop status", "site_ids": [site.id for site in sites], **fields}


def test_operator_publishes_its_sites(operator):
    site = create_site(operator.user, name="Shop")
    response = operator.post("/status-pages", json=page_body(site, description="Our shop"))
    assert response.status_code == 201, response.get_json()
    page = response.get_json()
    assert page["slug"] == "shop" and page["site_ids"] == [site.id] and page["owner_id"] == operator.user.id
    assert page["public_url"] == "/status/shop"
    assert operator.get(f"/status-pages/{page['id']}").get_json()["title"] == "Shop status"
    assert [p["id"] for p in operator.get("/status-pages").get_json()["items"]] == [page["id"]]


@pytest.mark.parametrize(
    "changes",
    [
        {"slug": "Shop"},
        {"slug": "-shop"},
        {"slug": "shop-"},
        {"slug": "a" * 65},
        {"slug": "sh op"},
        {"title": ""},
        {"title": "x" * 201},
        {"site_ids": "1"},
        {"site_ids": [0]},
        {"site_ids": ["x"]},
        {"description": "x" * 2001},
        {"owner_id": 1},
    ],
)
def test_invalid_bodies_are_422_with_field_errors(operator, changes):
    site = create_site(operator.user)
    response = operator.post("/status-pages", json={**page_body(site), **changes})
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_required_fields_and_duplicate_sites(operator):
    site = create_site(operator.user)
    for missing in ("slug", "title", "site_ids"):
        body = page_body(site)
        del body[missing]
        assert operator.post("/status-pages", json=body).status_code == 422, missing
    response = operator.post("/status-pages", json=page_body(site, site_ids=[site.id, site.id]))
    assert response.status_code == 422 and "site_ids" in response.get_json()["errors"]


def test_sites_must_be_writable_by_the_publisher(client, operator, other_operator):
    mine = create_site(operator.user)
    theirs = create_site(other_operator.user)
    shared_read = create_site(other_operator.user)
    share(shared_read, operator.user, "read")
    response = operator.post("/status-pages", json=page_body(mine, theirs, shared_read))
    assert response.status_code == 422
    errors = response.get_json()["errors"]["site_ids"]
    assert errors == [
        f"site {theirs.id} not found",
        f"site {shared_read.id}: publishing it needs write access",
    ]
    assert operator.post("/status-pages", json=page_body(mine, site_ids=[mine.id, 10**9])).status_code == 422
    shared_write = create_site(other_operator.user)
    share(shared_write, operator.user, "write")
    assert operator.post("/status-pages", json=page_body(mine, shared_write)).status_code == 201


def test_viewers_publish_nothing(viewer, operator):
    site = create_site(operator.user)
    share(site, viewer.user, "write")
    assert viewer.post("/status-pages", json=page_body(site)).status_code == 403


def test_slug_taken_is_409(operator, other_operator):
    assert operator.post("/status-pages", json=page_body(create_site(operator.user))).status_code == 201
    response = other_operator.post("/status-pages", json=page_body(create_site(other_operator.user)))
    assert response.status_code == 409
    assert response.get_json()["errors"] == {"slug": ["already taken"]}


def test_pages_of_others_are_404_and_admin_sees_all(admin, operator, other_operator):
    page = operator.post("/status-pages", json=page_body(create_site(operator.user))).get_json()
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"title": "x"}} if method == "patch" else {}
        assert getattr(other_operator, method)(f"/status-pages/{page['id']}", **kwargs).status_code == 404
    assert other_operator.get("/status-pages").get_json()["items"] == []
    assert admin.get(f"/status-pages/{page['id']}").status_code == 200
    assert [p["id"] for p in admin.get("/status-pages").get_json()["items"]] == [page["id"]]
    assert operator.get("/status-pages/999999").status_code == 404


def test_patch_and_delete(operator):
    first, second = create_site(operator.user), create_site(operator.user)
    page = operator.post("/status-pages", json=page_body(first)).get_json()
    changed = operator.patch(
        f"/status-pages/{page['id']}", json={"slug": "shop-2", "site_ids": [second.id, first.id]}
    )
    assert changed.status_code == 200
    assert changed.get_json()["site_ids"] == [second.id, first.id] and changed.get_json()["slug"] == "shop-2"
    assert operator.get("/public/status/shop", headers={"Authorization": ""}).status_code == 404
    assert operator.patch(f"/status-pages/{page['id']}", json={"site_ids": [10**9]}).status_code == 422
    assert operator.delete(f"/status-pages/{page['id']}").status_code == 204
    assert operator.get(f"/status-pages/{page['id']}").status_code == 404


def test_no_token_is_401(client):
    assert client.get("/api/cloudeye/v1/status-pages").status_code == 401
    assert client.post("/api/cloudeye/v1/status-pages", json={}).status_code == 401


# --- the public JSON ---------------------------------------------------------------------------------


def test_public_status_shows_names_states_uptime_and_incidents_only(client, operator):
    site = create_site(
        operator.user, name="Shop", url="https://secret-host.example.test/admin?token=abc", state="down"
    )
    quiet = create_site(operator.user, name="Blog", state="up")
    today = day_start(datetime.now(UTC))
    db.session.add_all(
        [
            UsabilityRollup(
                site_id=site.id,
                period="day",
                bucket_start=today - timedelta(days=1),
                checks_total=100,
                checks_up=90,
            ),
            UsabilityRollup(site_id=site.id, period="day", bucket_start=today, checks_total=10, checks_up=10),
            Incident(
                site_id=site.id,
                started_at=datetime.now(UTC) - timedelta(hours=1),
                cause="dns: secret-host.example.test does not resolve",
            ),
        ]
    )
    db.session.commit()
    operator.post("/status-pages", json=page_body(site, quiet))
    response = client.get("/api/cloudeye/v1/public/status/shop")
    assert response.status_code == 200
    body = response.get_json()
    assert body["title"] == "Shop status" and body["state"] == "degraded"
    shop, blog = body["sites"]
    assert (shop["name"], shop["state"], blog["state"]) == ("Shop", "down", "up")
    assert len(shop["daily_uptime"]) == 90
    assert shop["daily_uptime"][-2:] == [90.0, 100.0] and shop["daily_uptime"][0] is None
    assert shop["uptime_90d"] == 95.0 and blog["uptime_90d"] is None
    assert body["incidents"][0]["site_name"] == "Shop" and body["incidents"][0]["ended_at"] is None
    text = response.get_data(as_text=True)
    for secret in ("secret-host", "token=abc", "https://", "dns", "url", "cause", "owner"):
        assert secret not in text, secret


def test_unknown_slug_is_404(client):
    for slug in ("nope", "Not-A-Slug", "a" * 300, "%00"):
        response = client.get(f"/api/cloudeye/v1/public/status/{slug}")
        assert response.status_code == 404, slug
        assert response.get_json()["status"] == 404


def test_a_burst_of_visitors_reads_the_database_once(client, operator):
    operator.post("/status-pages", json=page_body(create_site(operator.user)))
    assert client.get("/api/cloudeye/v1/public/status/shop").status_code == 200
    assert client.get("/api/cloudeye/v1/public/status/missing").status_code == 404
    with statements() as sent:
        for _ in range(20):
            assert client.get("/api/cloudeye/v1/public/status/shop").status_code == 200
            assert client.get("/api/cloudeye/v1/public/status/missing").status_code == 404
    assert sent == []


def test_editing_a_page_shows_at_once(client, operator):
    site = create_site(operator.user)
    page = operator.post("/status-pages", json=page_body(site)).get_json()
    assert client.get("/api/cloudeye/v1/public/status/shop").get_json()["title"] == "Shop status"
    assert client.get("/api/cloudeye/v1/public/status/new-shop").status_code == 404
    operator.patch(f"/status-pages/{page['id']}", json={"title": "New title", "slug": "new-shop"})
    assert client.get("/api/cloudeye/v1/public/status/shop").status_code == 404
    assert client.get("/api/cloudeye/v1/public/status/new-shop").get_json()["title"] == "New title"
    operator.delete(f"/status-pages/{page['id']}")
    assert client.get("/api/cloudeye/v1/public/status/new-shop").status_code == 404


def test_a_deleted_site_leaves_the_page(client, operator):
    site, other = create_site(operator.user), create_site(operator.user)
    operator.post("/status-pages", json=page_body(site, other))
    operator.delete(f"/sites/{site.id}")
    from services import status_pages

    status_pages.invalidate_public("shop")
    assert [s["id"] for s in client.get("/api/cloudeye/v1/public/status/shop").get_json()["sites"]] == [
        other.id
    ]


def test_deleting_the_owner_deletes_its_pages(admin, client):
    owner = create_user("operator")
    site = create_site(owner)
    from services import status_pages

    status_pages.create_page(owner, page_body(site))
    db.session.delete(site)
    db.session.commit()
    assert admin.delete(f"/users/{owner.id}").status_code == 204
    status_pages.invalidate_public("shop")
    assert client.get("/api/cloudeye/v1/public/status/shop").status_code == 404


def test_a_site_unshared_from_the_owner_leaves_the_page(client, operator, other_operator):
    from services.models import SiteMember

    theirs = create_site(other_operator.user, name="Shared once")
    share(theirs, operator.user, "write")
    mine = create_site(operator.user, name="Mine")
    assert operator.post("/status-pages", json=page_body(mine, theirs)).status_code == 201
    names = [s["name"] for s in client.get("/api/cloudeye/v1/public/status/shop").get_json()["sites"]]
    assert names == ["Mine", "Shared once"]
    db.session.delete(db.session.get(SiteMember, (theirs.id, operator.user.id)))
    db.session.commit()
    from services import status_pages

    status_pages.invalidate_public("shop")
    names = [s["name"] for s in client.get("/api/cloudeye/v1/public/status/shop").get_json()["sites"]]
    assert names == ["Mine"]


def test_who_may_publish_the_owners_site(client, operator):
    """Every role and share around one site: writers publish it, readers are refused with a reason,
    strangers are told it does not exist, viewers publish nothing at all."""
    from tests.factories import role_matrix

    site = create_site(operator.user)
    expected = {
        "admin": 201,
        "owner": 201,
        "operator_write": 201,
        "operator_read": 422,
        "other_operator": 422,
        "viewer_read": 403,
        "viewer_write": 403,
        "viewer_unshared": 403,
    }
    for number, (role, caller) in enumerate(role_matrix(client, operator, site).items()):
        response = caller.post("/status-pages", json=page_body(site, slug=f"page-{number}"))
        assert response.status_code == expected[role], (role, response.get_json())
