from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import sqlalchemy as sa

from services.extensions import db
from services.models import Site
from services.usability import CheckResult, record_results
from tests.factories import create_site, share


def _record(site, *outcomes, start=None, step=timedelta(minutes=1), latency=100.0):
    """Record one check per outcome (True = up) for `site`, one `step` apart."""
    start = start or datetime.now(UTC) - step * len(outcomes)
    results = []
    for number, up in enumerate(outcomes):
        moment = start + step * number
        results.append(
            CheckResult(
                site_id=site.id,
                due_at=moment,
                checked_at=moment,
                up=up,
                http_status=200 if up else 503,
                response_ms=latency + number if up else None,
                failure_kind=None if up else "status",
                reason=None if up else "status 503 not accepted",
            )
        )
    record_results(results)
    db.session.commit()


def test_checks_are_listed_newest_first_and_filtered(operator):
    site = create_site(operator.user)
    _record(site, True, True, False, True)
    body = operator.get(f"/usability/checks?site_id={site.id}").get_json()
    assert body["total"] == 4
    times = [item["checked_at"] for item in body["items"]]
    assert times == sorted(times, reverse=True)
    down = operator.get(f"/usability/checks?site_id={site.id}&status=down").get_json()
    assert down["total"] == 1 and down["items"][0]["reason"] == "status 503 not accepted"
    assert down["items"][0]["failure_kind"] == "status" and down["items"][0]["http_status"] == 503
    since = quote(body["items"][1]["checked_at"])
    assert operator.get(f"/usability/checks?site_id={site.id}&since={since}").get_json()["total"] == 2
    until = quote(body["items"][1]["checked_at"])
    assert operator.get(f"/usability/checks?site_id={site.id}&until={until}").get_json()["total"] == 2


def test_check_filters_are_validated(operator):
    backwards = "since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z"
    for query in (
        "status=sideways",
        "since=yesterday",
        "site_id=abc",
        "site_id=0",
        "per_page=1000",
        backwards,
    ):
        response = operator.get(f"/usability/checks?{query}")
        assert response.status_code == 422, query
        assert response.get_json()["errors"], query


def test_a_second_result_for_the_same_due_time_is_not_counted_twice(operator):
    site = create_site(operator.user)
    moment = datetime.now(UTC) - timedelta(minutes=1)
    result = CheckResult(site_id=site.id, due_at=moment, checked_at=moment, up=True, response_ms=5.0)
    record_results([result])
    db.session.commit()
    record_results([result])
    db.session.commit()
    assert operator.get(f"/usability/checks?site_id={site.id}").get_json()["total"] == 1
    assert operator.get(f"/usability/summary?site_id={site.id}").get_json()["uptime"]["24h"] == 100.0


def test_summary_comes_from_rollups(operator):
    site = create_site(operator.user)
    _record(site, True, True, True, False)
    summary = operator.get(f"/usability/summary?site_id={site.id}").get_json()
    assert summary["site_id"] == site.id
    assert summary["state"] == "down"  # max_retries 0: the first failure turns it down
    assert summary["uptime"] == {"24h": 75.0, "7d": 75.0, "30d": 75.0}
    assert summary["latency_ms"]["avg"] == 101.0  # up checks: 100, 101, 102
    assert summary["latency_ms"]["p95"] == 102.0
    assert summary["last_checked_at"] and summary["open_incident"]["cause"].startswith("status")


def test_uptime_windows_differ_with_old_checks(operator):
    site = create_site(operator.user)
    _record(site, False, False, start=datetime.now(UTC) - timedelta(days=10), step=timedelta(hours=1))
    _record(site, True, True)
    uptime = operator.get(f"/usability/summary?site_id={site.id}").get_json()["uptime"]
    assert uptime["24h"] == 100.0 and uptime["7d"] == 100.0 and uptime["30d"] == 50.0


def test_summary_uptime_of_whole_days_and_ragged_ends_equals_the_hourly_sum(operator):
    """Whole days come from the daily rollups, the ends of each window from the hourly ones: the same
    figures as summing every hourly rollup of the window (what the summary read before)."""
    from services.models import UsabilityRollup
    from services.usability import UPTIME_WINDOWS, _uptime_windows, hour_start

    site = create_site(operator.user)
    now = datetime.now(UTC)
    # 40 days of a check every 37 minutes, down in a pattern that differs from day to day.
    count = 40 * 24 * 60 // 37
    _record(site, *[(n * 7) % 11 != 0 and n % 97 > 3 for n in range(count)], start=now - timedelta(days=40),
            step=timedelta(minutes=37))  # fmt: skip
    hourly = (
        db.session.execute(
            sa.select(UsabilityRollup).where(
                UsabilityRollup.site_id == site.id, UsabilityRollup.period == "hour"
            )
        )
        .scalars()
        .all()
    )
    expected = {}
    for name, span in UPTIME_WINDOWS.items():
        rows = [r for r in hourly if r.bucket_start >= hour_start(now - span)]
        expected[name] = round(100.0 * sum(r.checks_up for r in rows) / sum(r.checks_total for r in rows), 3)
    uptime, latency_sum, latency_count = _uptime_windows(site.id, now)
    assert uptime == expected and len(set(expected.values())) == 3
    day = [r for r in hourly if r.bucket_start >= hour_start(now - UPTIME_WINDOWS["24h"])]
    assert (latency_sum, latency_count) == (
        sum(r.latency_sum_ms for r in day),
        sum(r.latency_count for r in day),
    )
    assert operator.get(f"/usability/summary?site_id={site.id}").get_json()["uptime"] == expected


def test_summary_of_a_site_without_checks(operator):
    site = create_site(operator.user)
    summary = operator.get(f"/usability/summary?site_id={site.id}").get_json()
    assert summary["state"] == "unknown" and summary["uptime"]["24h"] is None
    assert summary["latency_ms"] == {"avg": None, "p95": None} and summary["open_incident"] is None
    assert operator.get("/usability/summary").status_code == 422


def test_max_retries_gives_pending_before_down_and_incidents_open_and_close(operator):
    site = create_site(operator.user, max_retries=2)
    _record(site, False, False)
    assert operator.get(f"/sites/{site.id}").get_json()["state"] == "pending"
    assert operator.get(f"/usability/incidents?site_id={site.id}").get_json()["total"] == 0
    _record(site, False)
    assert operator.get(f"/sites/{site.id}").get_json()["state"] == "down"
    incidents = operator.get(f"/usability/incidents?site_id={site.id}").get_json()
    assert incidents["total"] == 1 and incidents["items"][0]["ended_at"] is None
    _record(site, True, start=datetime.now(UTC) + timedelta(minutes=5))
    incident = operator.get(f"/usability/incidents?site_id={site.id}").get_json()["items"][0]
    assert incident["ended_at"] and incident["duration_s"] > 0 and incident["cause"].startswith("status")
    assert operator.get(f"/sites/{site.id}").get_json()["state"] == "up"
    assert operator.get(f"/usability/incidents?site_id={site.id}&open=true").get_json()["total"] == 0


def test_summary_cache_is_invalidated_by_new_checks_and_site_changes(operator, redis_client, app):
    site = create_site(operator.user)
    _record(site, True)
    first = operator.get(f"/usability/summary?site_id={site.id}").get_json()
    key = f"cloudeye:summary:{site.id}"
    assert redis_client.exists(key), "the summary is cached in Redis"
    _record(site, False)
    second = operator.get(f"/usability/summary?site_id={site.id}").get_json()
    assert first["state"] == "up" and second["state"] == "down"
    assert operator.patch(f"/sites/{site.id}", json={"name": "renamed"}).status_code == 200
    assert not redis_client.exists(key)


def test_a_summary_computed_during_a_write_is_not_served_after_it(operator, monkeypatch):
    """A reader that read the rows before a write committed, and stores its summary after the write
    invalidated the cache, must not leave that stale summary for the readers after the write."""
    from services import usability
    from services.sites import invalidate_site

    site = create_site(operator.user)
    _record(site, True)
    compute = usability._compute_summary

    def compute_then_a_write_lands(row):
        value = compute(row)
        with db.engine.begin() as connection:  # another request's write, committed and invalidated
            connection.execute(sa.update(Site).where(Site.id == site.id).values(state="down"))
        invalidate_site(site.id)
        return value

    monkeypatch.setattr(usability, "_compute_summary", compute_then_a_write_lands)
    assert operator.get(f"/usability/summary?site_id={site.id}").get_json()["state"] == "up"
    monkeypatch.setattr(usability, "_compute_summary", compute)
    db.session.expire_all()
    assert operator.get(f"/usability/summary?site_id={site.id}").get_json()["state"] == "down"


def test_usability_visibility(operator, other_operator, viewer, admin):
    site = create_site(operator.user)
    _record(site, True, False)
    for path in (
        f"/usability/checks?site_id={site.id}",
        f"/usability/summary?site_id={site.id}",
        f"/usability/incidents?site_id={site.id}",
    ):
        assert other_operator.get(path).status_code == 404, path
        assert viewer.get(path).status_code == 404, path
        assert admin.get(path).status_code == 200, path
    assert other_operator.get("/usability/checks").get_json()["total"] == 0
    assert other_operator.get("/usability/incidents").get_json()["total"] == 0
    assert admin.get("/usability/checks").get_json()["total"] == 2
    share(site, viewer.user)
    assert viewer.get(f"/usability/summary?site_id={site.id}").status_code == 200
    assert viewer.get("/usability/checks").get_json()["total"] == 2
