"""Maintenance windows through the API: one-off and weekly (with a time zone), the rules (422 with the
fields, nothing stored), who may create them, and when a window is on."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.alerts.maintenance import covers, next_start
from services.extensions import db
from services.models import MaintenanceWindow
from tests.factories import create_site, share


def count() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(MaintenanceWindow))


def test_one_off_window(operator):
    site = create_site(operator.user)
    now = datetime.now(UTC)
    response = operator.post(
        "/maintenance",
        json={
            "title": "DB upgrade",
            "site_ids": [site.id],
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["recurring"] is False and body["active"] is True and body["site_ids"] == [site.id]
    assert body["next_start_at"] is None and body["timezone"] == "UTC"
    assert operator.get(f"/maintenance?site_id={site.id}").get_json()["total"] == 1
    patched = operator.patch(
        f"/maintenance/{body['id']}",
        json={
            "title": "later",
            "starts_at": (now + timedelta(hours=2)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
        },
    )
    assert patched.status_code == 200 and patched.get_json()["active"] is False
    assert operator.delete(f"/maintenance/{body['id']}").status_code == 204
    assert count() == 0


def test_weekly_window_in_a_time_zone(operator):
    site = create_site(operator.user)
    response = operator.post(
        "/maintenance",
        json={
            "title": "Sunday night",
            "site_ids": [site.id],
            "weekdays": ["sun"],
            "start_time": "23:30",
            "duration_min": 90,
            "timezone": "Asia/Shanghai",
        },
    )
    assert response.status_code == 201, response.get_json()
    window = db.session.get(MaintenanceWindow, response.get_json()["id"])
    # Sunday 23:30 in Shanghai is 15:30 UTC; the window runs 90 minutes, across midnight local time.
    sunday = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)
    assert covers(window, sunday) and covers(window, sunday + timedelta(minutes=89))
    assert not covers(window, sunday - timedelta(minutes=1)) and not covers(
        window, sunday + timedelta(minutes=90)
    )
    assert not covers(window, sunday + timedelta(days=1))
    assert next_start(window, sunday + timedelta(minutes=1)) == sunday + timedelta(days=7)


def test_weekly_window_follows_daylight_saving(operator):
    site = create_site(operator.user)
    body = operator.post(
        "/maintenance",
        json={
            "title": "x",
            "site_ids": [site.id],
            "weekdays": ["mon"],
            "start_time": "02:00",
            "duration_min": 60,
            "timezone": "Europe/Berlin",
        },
    ).get_json()
    window = db.session.get(MaintenanceWindow, body["id"])
    assert covers(window, datetime(2026, 1, 5, 1, 30, tzinfo=UTC))  # CET: 02:00 local = 01:00 UTC
    assert covers(window, datetime(2026, 7, 6, 0, 30, tzinfo=UTC))  # CEST: 02:00 local = 00:00 UTC
    assert not covers(window, datetime(2026, 7, 6, 1, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"site_ids": [1], "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z"}, "title"),
        ({"title": "x", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z"}, "site_ids"),
        (
            {
                "title": "x",
                "site_ids": [],
                "starts_at": "2026-01-01T00:00:00Z",
                "ends_at": "2026-01-02T00:00:00Z",
            },
            "site_ids",
        ),
        (
            {
                "title": "x",
                "site_ids": "SITE",
                "starts_at": "2026-01-02T00:00:00Z",
                "ends_at": "2026-01-01T00:00:00Z",
            },
            "ends_at",
        ),
        ({"title": "x", "site_ids": "SITE", "starts_at": "2026-01-02T00:00:00Z"}, "ends_at"),
        (
            {"title": "x", "site_ids": "SITE", "starts_at": "not a date", "ends_at": "2026-01-01T00:00:00Z"},
            "starts_at",
        ),
        (
            {
                "title": "x",
                "site_ids": "SITE",
                "weekdays": ["funday"],
                "start_time": "02:00",
                "duration_min": 30,
            },
            "weekdays",
        ),
        (
            {
                "title": "x",
                "site_ids": "SITE",
                "weekdays": ["mon"],
                "start_time": "25:00",
                "duration_min": 30,
            },
            "start_time",
        ),
        (
            {"title": "x", "site_ids": "SITE", "weekdays": ["mon"], "start_time": "02:00", "duration_min": 0},
            "duration_min",
        ),
        ({"title": "x", "site_ids": "SITE", "weekdays": ["mon"], "start_time": "02:00"}, "duration_min"),
        (
            {
                "title": "x",
                "site_ids": "SITE",
                "weekdays": ["mon"],
                "start_time": "02:00",
                "duration_min": 30,
                "timezone": "Mars/Olympus",
            },
            "timezone",
        ),
        (
            {
                "title": "x",
                "site_ids": "SITE",
                "weekdays": ["mon"],
                "start_time": "02:00",
                "duration_min": 30,
                "starts_at": "2026-01-01T00:00:00Z",
            },
            "starts_at",
        ),
        (
            {
                "title": "x",
                "site_ids": [999999],
                "starts_at": "2026-01-01T00:00:00Z",
                "ends_at": "2026-01-02T00:00:00Z",
            },
            "site_ids",
        ),
    ],
)
def test_bad_windows_are_422_with_the_field(operator, payload, field):
    site = create_site(operator.user)
    if payload.get("site_ids") == "SITE":
        payload = {**payload, "site_ids": [site.id]}
    response = operator.post("/maintenance", json=payload)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert count() == 0


def test_who_may_create_windows(operator, other_operator, viewer, admin):
    site = create_site(operator.user)
    one_off = {
        "title": "x",
        "site_ids": [site.id],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-01-02T00:00:00Z",
    }
    share(site, viewer.user, "write")
    assert viewer.post("/maintenance", json=one_off).status_code == 403  # viewers write nothing
    assert other_operator.post("/maintenance", json=one_off).status_code == 422  # cannot see the site
    share(site, other_operator.user, "read")
    assert other_operator.post("/maintenance", json=one_off).status_code == 403  # may read, not change
    assert count() == 0
    window = operator.post("/maintenance", json=one_off).get_json()
    assert other_operator.get(f"/maintenance/{window['id']}").status_code == 404
    assert other_operator.patch(f"/maintenance/{window['id']}", json={"title": "mine"}).status_code == 404
    assert admin.get("/maintenance").get_json()["total"] == 1
    assert admin.delete(f"/maintenance/{window['id']}").status_code == 204


@pytest.mark.parametrize(
    "changes",
    [
        {"ends_at": "2000-01-01T00:00:00Z"},
        {"site_ids": []},
        {"title": ""},
        {"weekdays": ["mon"]},
        {"timezone": "Nowhere/Else", "weekdays": ["mon"], "start_time": "01:00", "duration_min": 5},
    ],
)
def test_a_bad_patch_changes_nothing(operator, changes):
    site = create_site(operator.user)
    one_off = {
        "title": "x",
        "site_ids": [site.id],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-01-02T00:00:00Z",
    }
    created = operator.post("/maintenance", json=one_off).get_json()
    response = operator.patch(f"/maintenance/{created['id']}", json=changes)
    assert response.status_code == 422 and response.get_json()["errors"], response.get_json()
    assert operator.get(f"/maintenance/{created['id']}").get_json() == created


@pytest.mark.parametrize("zone", ["Mars/Olympus", "x" * 300, "../../etc/passwd"])
def test_a_one_off_windows_time_zone_is_checked_too(operator, zone):
    site = create_site(operator.user)
    response = operator.post(
        "/maintenance",
        json={"title": "t", "site_ids": [site.id], "starts_at": "2030-01-01T00:00:00Z",
              "ends_at": "2030-01-02T00:00:00Z", "timezone": zone},
    )  # fmt: skip
    assert response.status_code == 422 and "unknown time zone" in str(
        response.get_json()["errors"]["timezone"]
    )
    assert count() == 0
