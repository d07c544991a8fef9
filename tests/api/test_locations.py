"""Sites' locations and quorum through the API (422 with the field for every bad value, nothing stored),
GET /locations, and probe accounts among the users."""

import pytest

from services import locations
from services.config import API_PREFIX
from services.extensions import db
from services.models import Site, SiteLocation
from services.sites import MAX_LOCATIONS
from tests.factories import create_site

URL = "https://shop.example.test/"


def _create(caller, **fields):
    return caller.post("/sites", json={"name": "shop", "url": URL, **fields})


def test_a_site_with_locations_and_its_default_quorum(operator):
    response = _create(operator, locations=["eu", "us", "asia"])
    assert response.status_code == 201, response.get_json()
    site = response.get_json()
    assert site["locations"] == ["eu", "us", "asia"] and site["quorum"] is None
    rows = db.session.query(SiteLocation).filter_by(site_id=site["id"]).all()
    assert sorted(row.location for row in rows) == ["asia", "eu", "us"]
    summary = operator.get(f"/usability/summary?site_id={site['id']}").get_json()
    assert summary["quorum"] == 2  # a majority of three
    assert set(summary["locations"]) == {"eu", "us", "asia"}
    # Unknown locations are allowed, and reported not alive (nothing runs them yet).
    assert all(
        view["alive"] is False and view["state"] == "unknown" for view in summary["locations"].values()
    )
    assert "only 0 of its 3 locations are alive" in summary["state_held_reason"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"locations": ["EU"]}, "locations", "lower-case"),
        ({"locations": ["eu", "eu"]}, "locations", "only once"),
        ({"locations": [""]}, "locations", "lower-case"),
        ({"locations": ["a b"]}, "locations", "lower-case"),
        ({"locations": [f"l{i}" for i in range(MAX_LOCATIONS + 1)]}, "locations", f"at most {MAX_LOCATIONS}"),
        ({"locations": ["eu", "us"], "quorum": 3}, "quorum", "between 1 and 2"),
        ({"locations": ["eu", "us"], "quorum": 0}, "quorum", "between 1 and 2"),
        ({"locations": ["eu"], "quorum": -1}, "quorum", "between 1 and 1"),
        ({"quorum": 1}, "quorum", "must be null"),
        ({"locations": None}, "locations", "null"),
        ({"locations": "eu"}, "locations", "list"),
        ({"quorum": "two"}, "quorum", "integer"),
    ],
)
def test_bad_locations_and_quorums_are_422_naming_the_field(operator, fields, field, message):
    response = _create(operator, **fields)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert field in errors and message.lower() in " ".join(map(str, errors[field])).lower(), errors
    assert db.session.query(Site).count() == 0


def test_a_patch_is_checked_against_the_site_as_it_is(operator):
    site = create_site(operator.user, locations=["eu", "us", "asia"], quorum=3)
    # Fewer locations than the quorum kept: refused, nothing changes.
    response = operator.patch(f"/sites/{site.id}", json={"locations": ["eu"]})
    assert response.status_code == 422 and "quorum" in response.get_json()["errors"]
    response = operator.patch(f"/sites/{site.id}", json={"locations": []})
    assert response.status_code == 422 and "quorum" in response.get_json()["errors"]
    db.session.expire_all()
    assert db.session.get(Site, site.id).locations == ["eu", "us", "asia"]
    # With the quorum in the same body, it goes through.
    response = operator.patch(f"/sites/{site.id}", json={"locations": ["eu"], "quorum": None})
    assert response.status_code == 200 and response.get_json()["locations"] == ["eu"]
    assert operator.patch(f"/sites/{site.id}", json={"quorum": 2}).status_code == 422
    response = operator.patch(f"/sites/{site.id}", json={"locations": [], "quorum": None})
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Site, site.id).next_check_at is not None  # any location again: its own schedule


def test_the_document_states_the_location_rules(app):
    spec = app.test_client().get(f"{API_PREFIX}/openapi.json").get_json()
    site = spec["components"]["schemas"]["SiteWrite"]["properties"]
    assert site["locations"]["maxItems"] == MAX_LOCATIONS and site["locations"]["uniqueItems"] is True
    assert site["locations"]["items"]["pattern"] == locations.LOCATION_PATTERN
    assert site["quorum"]["minimum"] == 1 and site["quorum"]["nullable"] is True
    assert "majority" in site["quorum"]["description"]
    paths = spec["paths"]
    for path in (
        "/locations",
        "/probe/claims",
        "/probe/results",
        "/probe/release",
        "/users/{user_id}/tokens",
    ):
        assert API_PREFIX + path in paths, path


def test_get_locations_lists_the_heartbeats(client, viewer, admin):
    assert viewer.get("/locations").get_json() == {
        "items": [],
        "total": 0,
        "total_is_estimate": False,
        "page": 1,
        "per_page": 20,
    }
    locations.beat("w1", "eu", {})
    locations.beat("w2", "eu", {})
    locations.beat("w3", "us", {})
    locations.clear("w3", "us")
    body = viewer.get("/locations").get_json()
    assert body["total"] == 2
    eu, us = body["items"]
    assert (eu["name"], eu["workers"], eu["alive"]) == ("eu", 2, True)
    assert (us["name"], us["workers"], us["alive"]) == ("us", 0, False) and us["last_seen_at"]
    assert admin.get("/locations?per_page=1&page=2").get_json()["items"][0]["name"] == "us"
    assert viewer.get("/locations?per_page=0").status_code == 422


def test_probe_accounts_need_a_location_and_only_they_have_one(admin):
    response = admin.post("/users", json={"username": "tokyo", "password": "long enough pw", "role": "probe"})
    assert response.status_code == 422 and "location" in response.get_json()["errors"]
    response = admin.post(
        "/users",
        json={"username": "tokyo", "password": "long enough pw", "role": "probe", "location": "Tokyo"},
    )
    assert response.status_code == 422 and "location" in response.get_json()["errors"]
    response = admin.post(
        "/users",
        json={"username": "bob", "password": "long enough pw", "role": "viewer", "location": "tokyo"},
    )
    assert response.status_code == 422 and "location" in response.get_json()["errors"]
    response = admin.post(
        "/users",
        json={"username": "tokyo", "password": "long enough pw", "role": "probe", "location": "tokyo"},
    )
    assert response.status_code == 201 and response.get_json()["location"] == "tokyo"
    user_id = response.get_json()["id"]
    moved = admin.patch(f"/users/{user_id}", json={"location": "osaka"})
    assert moved.status_code == 200 and moved.get_json()["location"] == "osaka"
    # Another role: the location goes with the probe role.
    changed = admin.patch(f"/users/{user_id}", json={"role": "viewer"})
    assert changed.status_code == 200 and changed.get_json()["location"] is None
    assert admin.patch(f"/users/{user_id}", json={"role": "probe"}).status_code == 422
