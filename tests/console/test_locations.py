"""The console and locations: which locations see a site down (site page and overview), and probe
accounts kept out."""

from datetime import UTC, datetime, timedelta

from services import locations
from services.extensions import db
from services.models import Site
from services.usability import CheckResult, record_results
from tests.console.conftest import csrf_of
from tests.factories import PASSWORD, create_site, create_user


def test_the_console_refuses_probe_accounts(client):
    probe = create_user("probe", location="far")
    response = client.post(
        "/login",
        data={"username": probe.username, "password": PASSWORD, "csrf_token": csrf_of(client.get("/login"))},
    )
    assert response.status_code == 403
    assert "cannot use the console" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in


def _vote(site, location: str, up: bool, minute: int) -> None:
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30 - minute)
    record_results(
        [
            CheckResult(
                site_id=site.id,
                due_at=due,
                checked_at=due,
                up=up,
                http_status=200 if up else None,
                response_ms=20.0 if up else None,
                failure_kind=None if up else "timeout",
                reason=None if up else "no answer",
                location=location,
            )
        ]
    )
    db.session.commit()


def test_the_site_page_and_the_overview_show_which_locations_see_it_down(console_as, operator):
    site = create_site(operator.user, name="Far shop", locations=["eu", "us", "asia"])
    for name in ("eu", "us", "asia"):
        locations.beat(f"w-{name}", name, {})
    _vote(site, "eu", False, 0)
    _vote(site, "us", True, 0)
    _vote(site, "asia", True, 0)
    console = console_as(operator.user)
    page = console.get(f"/sites/{site.id}").get_data(as_text=True)
    assert 'data-test="locations"' in page and "down when 2 of 3 live locations see it down" in page
    assert 'data-location="eu" data-state="down"' in page and 'data-location="us" data-state="up"' in page
    assert 'data-test="state-held"' not in page
    overview = console.get("/").get_data(as_text=True)
    assert 'data-test="down-at"' in overview and "down at eu" in overview

    locations.clear("w-us", "us")
    locations.clear("w-asia", "asia")
    page = console.get(f"/sites/{site.id}").get_data(as_text=True)
    assert 'data-test="state-held"' in page and "only 1 of its 3 locations are alive" in page
    assert "it does not vote" in page
    zh = console.get(f"/sites/{site.id}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert 'data-test="locations"' in zh


def test_a_site_without_locations_shows_none(console_as, operator):
    site = create_site(operator.user)
    page = console_as(operator.user).get(f"/sites/{site.id}").get_data(as_text=True)
    assert 'data-test="locations"' not in page


def test_the_site_form_sets_locations_and_quorum(console_as, operator):
    console = console_as(operator.user)
    form = {
        "name": "Far shop",
        "url": "https://far.example.test/",
        "check_interval_s": "60",
        "timeout_s": "10",
        "max_retries": "0",
        "accepted_status": "200-399",
        "tamper_threshold": "0.05",
        "locations": "eu\nus\n\nasia\n",
        "quorum": "",
    }
    response = console.post("/sites/new", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    site_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    created = db.session.get(Site, site_id)
    assert created.locations == ["eu", "us", "asia"] and created.quorum is None
    bad = console.post(f"/sites/{site_id}/edit", data={**form, "quorum": "4"})
    assert bad.status_code == 422 and "between 1 and 3" in bad.get_data(as_text=True)
    assert console.post(f"/sites/{site_id}/edit", data={**form, "quorum": "3"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Site, site_id).quorum == 3
    edit = console.get(f"/sites/{site_id}/edit").get_data(as_text=True)
    assert "eu\nus\nasia" in edit
